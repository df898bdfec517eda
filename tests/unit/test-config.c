/*
 * Unit tests for agent/config.c: every key and default, every error the
 * file's contents can cause (with its exact "FILE:LINE: message"), and the
 * NSS lookup failures, reached by wrapping getpwnam_r/getgrnam_r.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/config.h"
#include "lib/error.h"
#include "lib/limits.h"

/* Small on purpose: every path built from them then fits its buffer. */
static char tmpdir[64];
static char conf[128];

/* NSS mocks: fail with nss_error, or ERANGE while the buffer is small. */
static int nss_error;
static size_t nss_min_buf;
static unsigned nss_calls;

int	__real_getpwnam_r(const char *, struct passwd *, char *, size_t,
	    struct passwd **);
int	__wrap_getpwnam_r(const char *, struct passwd *, char *, size_t,
	    struct passwd **);
int	__real_getgrnam_r(const char *, struct group *, char *, size_t,
	    struct group **);
int	__wrap_getgrnam_r(const char *, struct group *, char *, size_t,
	    struct group **);

int
__wrap_getpwnam_r(const char *name, struct passwd *pw, char *buf,
    size_t len, struct passwd **res)
{
	nss_calls++;
	*res = NULL;
	if (nss_error != 0)
		return nss_error;
	if (len < nss_min_buf)
		return ERANGE;
	return __real_getpwnam_r(name, pw, buf, len, res);
}

int
__wrap_getgrnam_r(const char *name, struct group *gr, char *buf,
    size_t len, struct group **res)
{
	nss_calls++;
	*res = NULL;
	if (nss_error != 0)
		return nss_error;
	if (len < nss_min_buf)
		return ERANGE;
	return __real_getgrnam_r(name, gr, buf, len, res);
}

static void
write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static int
load_len(const char *text, size_t len, struct botid_agent_config **cfg,
    char *err, size_t errlen)
{
	write_file(conf, text, len, 0644);
	return config_load(conf, cfg, err, errlen);
}

static int
load(const char *text, struct botid_agent_config **cfg, char *err,
    size_t errlen)
{
	return load_len(text, strlen(text), cfg, err, errlen);
}

/* Loads text and expects exactly "CONF:line: msg". */
static void
check_error_len(const char *text, size_t len, int line, const char *msg)
{
	struct botid_agent_config *cfg = (void *)1;
	char err[1024], want[1024];
	int r;

	r = load_len(text, len, &cfg, err, sizeof(err));
	if (line > 0)
		snprintf(want, sizeof(want), "%s:%d: %s", conf, line, msg);
	else
		snprintf(want, sizeof(want), "%s: %s", conf, msg);
	if (r != BOTID_ERR_CONFIG || strcmp(err, want) != 0)
		print_message("config was:\n%.*s\n", (int)len, text);
	assert_int_equal(r, BOTID_ERR_CONFIG);
	assert_null(cfg);
	assert_string_equal(err, want);
}

static void
check_error(const char *text, int line, const char *msg)
{
	check_error_len(text, strlen(text), line, msg);
}

static struct botid_agent_config *
check_ok(const char *text)
{
	struct botid_agent_config *cfg = NULL;
	char err[1024];
	int r;

	r = load(text, &cfg, err, sizeof(err));
	if (r != 0)
		print_message("unexpected error: %s\nconfig was:\n%s\n", err,
		    text);
	assert_int_equal(r, 0);
	assert_non_null(cfg);
	assert_string_equal(err, "");
	return cfg;
}

static int
group_setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/botid-test-config.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(conf, sizeof(conf), "%s/agent.conf", tmpdir);
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
test_setup(void **state)
{
	nss_error = 0;
	nss_min_buf = 0;
	nss_calls = 0;
	return 0;
}

static void
test_defaults(void **state)
{
	struct botid_agent_config *cfg;

	cfg = check_ok("");
	assert_string_equal(cfg->path, conf);
	assert_string_equal(cfg->socket_path, "/run/botid/agent.sock");
	assert_int_equal(cfg->socket_mode, 0660);
	assert_null(cfg->socket_group);
	assert_string_equal(cfg->state_dir, "/var/lib/botid");
	assert_null(cfg->tcti);
	assert_string_equal(cfg->audit_log, "/var/log/botid/audit.log");
	assert_int_equal(cfg->max_connections, 1024);
	assert_int_equal(cfg->idle_timeout, 300);
	assert_int_equal(cfg->tpm_loaded_keys, 2);
	assert_int_equal(cfg->pkcs11_sessions, 4);
	assert_int_equal(cfg->max_queue_wait_ms, 30000);
	assert_int_equal(cfg->nbots, 0);
	config_free(cfg);

	/* Comments, blank lines and an empty [agent] change nothing. */
	cfg = check_ok("# just a comment\n\n; another\n[agent]\n");
	assert_int_equal(cfg->max_connections, 1024);
	config_free(cfg);
}

/*
 * An exe: term records which file its path names at load (st_dev,
 * st_ino), so that a caller's bind mount over the path cannot pass.
 */
static void
test_exe_identity(void **state)
{
	struct botid_agent_config *cfg;
	const struct botid_allow_term *t;
	struct stat st;
	char exe[PATH_MAX], text[PATH_MAX + 64];
	ssize_t n;
	int m;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	assert_int_equal(stat(exe, &st), 0);
	m = snprintf(text, sizeof(text), "[bot a]\nbackend = tpm\n"
	    "allow = exe:%s\nallow = exe:/nonexistent/bot\n"
	    "allow = exe:/proc\n", exe);
	assert_true(m > 0 && (size_t)m < sizeof(text));
	cfg = check_ok(text);
	t = &cfg->bots[0].allow[0].terms[0];
	assert_int_equal(t->kind, BOTID_ALLOW_EXE);
	assert_int_equal(t->have_file, 1);
	assert_true(t->dev == st.st_dev && t->ino == st.st_ino);
	/* Missing, or not a regular file: matches nobody. */
	assert_int_equal(cfg->bots[0].allow[1].terms[0].have_file, 0);
	assert_int_equal(cfg->bots[0].allow[2].terms[0].have_file, 0);
	config_free(cfg);
}

static void
test_full(void **state)
{
	struct botid_agent_config *cfg;
	const struct botid_bot_config *b;
	const struct botid_allow_rule *a;

	cfg = check_ok(
	    "[agent]\n"
	    "socket = /run/x/a.sock\n"
	    "socket_mode = 0640\n"
	    "socket_group = root\n"
	    "state_dir = /srv/botid\n"
	    "tcti = swtpm:host=127.0.0.1,port=2321\n"
	    "audit_log = /srv/audit.log\n"
	    "max_connections = 65536\n"
	    "idle_timeout = 86400\n"
	    "tpm_loaded_keys = 64\n"
	    "pkcs11_sessions = 1\n"
	    "\n"
	    "[bot scraper-1]\n"
	    "backend = tpm\n"
	    "allow = uid:root exe:/usr/bin/scraper\n"
	    "allow = gid:nogroup unit:scraper.service\n"
	    "allow = uid:12345 gid:0 gid:root unit:session-2.scope\n"
	    "\n"
	    "[bot hsm.bot_2]\n"
	    "backend = pkcs11\n"
	    "key_type = rsa-3072\n"
	    "module = /usr/lib/softhsm/libsofthsm2.so\n"
	    "token = botid token\n"
	    "pin_file = /etc/botid/hsm.pin\n"
	    "\n"
	    "[bot cred]\n"
	    "backend = pkcs11\n"
	    "key_type = ecdsa-p384\n"
	    "module = /usr/lib/p11.so\n"
	    "token = t\n"
	    "pin_credential = botid.hsm-pin\n"
	    "\n"
	    "[bot nobody-may]\n"
	    "backend = tpm\n"
	    "key_type = rsa-2048\n");
	assert_string_equal(cfg->socket_path, "/run/x/a.sock");
	assert_int_equal(cfg->socket_mode, 0640);
	assert_string_equal(cfg->socket_group, "root");
	assert_int_equal(cfg->socket_gid, 0);
	assert_string_equal(cfg->state_dir, "/srv/botid");
	assert_string_equal(cfg->tcti, "swtpm:host=127.0.0.1,port=2321");
	assert_string_equal(cfg->audit_log, "/srv/audit.log");
	assert_int_equal(cfg->max_connections, 65536);
	assert_int_equal(cfg->idle_timeout, 86400);
	assert_int_equal(cfg->tpm_loaded_keys, 64);
	assert_int_equal(cfg->pkcs11_sessions, 1);
	assert_int_equal(cfg->nbots, 4);

	b = config_find_bot(cfg, "scraper-1");
	assert_ptr_equal(b, &cfg->bots[0]);
	assert_int_equal(b->line, 13);
	assert_int_equal(b->backend, BOTID_BACKEND_TPM);
	assert_int_equal(b->key_type, BOTID_KEY_ECDSA_P256);
	assert_null(b->module);
	assert_null(b->token_label);
	assert_null(b->pin_file);
	assert_null(b->pin_credential);
	assert_int_equal(b->nallow, 3);
	a = &b->allow[0];
	assert_int_equal(a->line, 15);
	assert_int_equal(a->nterms, 2);
	assert_int_equal(a->terms[0].kind, BOTID_ALLOW_UID);
	assert_int_equal(a->terms[0].id, 0);
	assert_null(a->terms[0].text);
	assert_int_equal(a->terms[1].kind, BOTID_ALLOW_EXE);
	assert_string_equal(a->terms[1].text, "/usr/bin/scraper");
	/* No such file when loaded: the term matches nobody. */
	assert_int_equal(a->terms[1].have_file, 0);
	a = &b->allow[1];
	assert_int_equal(a->line, 16);
	assert_int_equal(a->nterms, 2);
	assert_int_equal(a->terms[0].kind, BOTID_ALLOW_GID);
	assert_int_equal(a->terms[0].id, getgrnam("nogroup")->gr_gid);
	assert_int_equal(a->terms[1].kind, BOTID_ALLOW_UNIT);
	assert_string_equal(a->terms[1].text, "scraper.service");
	a = &b->allow[2];
	assert_int_equal(a->nterms, 4);
	assert_int_equal(a->terms[0].id, 12345);
	assert_int_equal(a->terms[1].kind, BOTID_ALLOW_GID);
	assert_int_equal(a->terms[2].kind, BOTID_ALLOW_GID);
	assert_int_equal(a->terms[2].id, 0);
	assert_int_equal(a->terms[3].kind, BOTID_ALLOW_UNIT);
	assert_string_equal(a->terms[3].text, "session-2.scope");

	b = config_find_bot(cfg, "hsm.bot_2");
	assert_non_null(b);
	assert_int_equal(b->backend, BOTID_BACKEND_PKCS11);
	assert_int_equal(b->key_type, BOTID_KEY_RSA_3072);
	assert_string_equal(b->module, "/usr/lib/softhsm/libsofthsm2.so");
	assert_string_equal(b->token_label, "botid token");
	assert_string_equal(b->pin_file, "/etc/botid/hsm.pin");
	assert_null(b->pin_credential);
	assert_int_equal(b->nallow, 0);

	b = config_find_bot(cfg, "cred");
	assert_non_null(b);
	assert_int_equal(b->key_type, BOTID_KEY_ECDSA_P384);
	assert_null(b->pin_file);
	assert_string_equal(b->pin_credential, "botid.hsm-pin");

	b = config_find_bot(cfg, "nobody-may");
	assert_non_null(b);
	assert_int_equal(b->key_type, BOTID_KEY_RSA_2048);
	assert_int_equal(b->nallow, 0);
	assert_null(b->allow);

	assert_null(config_find_bot(cfg, "scraper"));
	assert_null(config_find_bot(cfg, NULL));
	assert_null(config_find_bot(NULL, "cred"));
	config_free(cfg);
}

static void
test_syntax_variants(void **state)
{
	struct botid_agent_config *cfg;

	/* ':' separates too, " ;" starts a comment, a ';' inside stays. */
	cfg = check_ok(
	    "[ agent ] ; the agent\n"
	    "  state_dir = /srv/s\n"
	    "socket: /run/a;b.sock ; comment\n"
	    "audit_log = none\n"
	    "\t# indented comments are fine after a key\n"
	    "socket_group = 0\n"
	    "[bot\tb]   # trailing comment\n"
	    "  backend = tpm\n");
	assert_string_equal(cfg->socket_path, "/run/a;b.sock");
	assert_string_equal(cfg->state_dir, "/srv/s");
	assert_null(cfg->audit_log);
	/* audit_log = none leaves the other paths alone (event_log was freed). */
	assert_string_equal(cfg->event_log,
	    "/sys/kernel/security/tpm0/binary_bios_measurements");
	assert_string_equal(cfg->socket_group, "0");
	assert_int_equal(cfg->socket_gid, 0);
	assert_non_null(config_find_bot(cfg, "b"));
	config_free(cfg);

	/* CRLF line endings and a UTF-8 byte order mark. */
	cfg = check_ok("\xef\xbb\xbf[agent]\r\nsocket_group = 4242\r\n"
	    "idle_timeout = 0001\r\n");
	assert_int_equal(cfg->socket_gid, 4242);
	assert_int_equal(cfg->idle_timeout, 1);
	config_free(cfg);

	/* No newline at the end of the file. */
	cfg = check_ok("[agent]\nmax_connections = 7");
	assert_int_equal(cfg->max_connections, 7);
	config_free(cfg);
}

static void
test_line_numbers(void **state)
{
	check_error(
	    "# comment\n"
	    "\n"
	    "[agent]\n"
	    "; another comment\n"
	    "socket = /run/x.sock\n"
	    "\r\n"
	    "   \n"
	    "sockt = /x\n", 8, "unknown key 'sockt' in [agent]");
	check_error(
	    "[bot a]\n"
	    "backend = tpm\n"
	    "  # indented comment\n"
	    "\n"
	    "bakend = tpm\n", 5, "unknown key 'bakend' in [bot a]");
	/* An indented line after a key would be glued onto its value. */
	check_error(
	    "[agent]\n"
	    "socket = /run/a.sock\n"
	    "    /run/b.sock\n", 3, "indented line would continue the "
	    "previous value; continuation lines are not supported");
	check_error(
	    "[bot a]\n"
	    "backend = tpm\n"
	    "allow = uid:0\n"
	    "\texe:/usr/bin/x\n", 4, "indented line would continue the "
	    "previous value; continuation lines are not supported");
}

static void
test_long_lines(void **state)
{
	struct botid_agent_config *cfg;
	char text[512];
	int n;

	/* inih's buffer is 200 bytes: 197 of text, "\r\n" and NUL. */
	n = snprintf(text, sizeof(text), "[agent]\ntcti = %0190d\n", 0);
	assert_int_equal(n, 8 + 197 + 1);
	cfg = check_ok(text);
	assert_int_equal(strlen(cfg->tcti), 190);
	config_free(cfg);
	snprintf(text, sizeof(text), "[agent]\ntcti = %0190d\r\n", 0);
	cfg = check_ok(text);
	config_free(cfg);
	snprintf(text, sizeof(text), "[agent]\ntcti = %0191d\n", 0);
	check_error(text, 2, "line longer than 197 bytes");
	/* Also when it is the last line, without a newline. */
	snprintf(text, sizeof(text), "\n\n[agent]\ntcti = %0191d", 0);
	check_error(text, 4, "line longer than 197 bytes");
	/* A long comment is still a long line. */
	snprintf(text, sizeof(text), "#%0300d\n", 0);
	check_error(text, 1, "line longer than 197 bytes");
}

static void
test_inline_pin(void **state)
{
	struct botid_agent_config *cfg = NULL;
	char err[512];

	check_error("[bot a]\nbackend = pkcs11\npin = 123456\n", 3,
	    "'pin': inline PINs are not allowed; use pin_file or "
	    "pin_credential");
	check_error("[bot a]\npin_value = 123456\n", 2,
	    "'pin_value': inline PINs are not allowed; use pin_file or "
	    "pin_credential");
	check_error("[agent]\npin = 123456\n", 2,
	    "'pin': inline PINs are not allowed; use pin_file or "
	    "pin_credential");
	/* Refused even before any section, and never echoed. */
	assert_int_equal(load("pin = s3cr3t\n", &cfg, err, sizeof(err)),
	    BOTID_ERR_CONFIG);
	assert_null(strstr(err, "s3cr3t"));
}

static void
test_sections(void **state)
{
	char name[80];
	char text[256];
	struct botid_agent_config *cfg;

	check_error("[agent]\n[agent]\n", 2,
	    "duplicate [agent] section (first at line 1)");
	check_error("[agents]\n", 1, "unknown section [agents]");
	check_error("[Agent]\n", 1, "unknown section [Agent]");
	check_error("[]\n", 1, "unknown section []");
	check_error("[bots a]\n", 1, "unknown section [bots a]");
	check_error("[agent\n", 1, "missing ']' in section header");
	check_error("[agent] x\n", 1, "unexpected text after section header");
	check_error("socket = /a\n", 1, "key 'socket' outside any section; "
	    "start with [agent] or [bot NAME]");
	check_error("[agent]\nsocket\n", 2, "expected 'key = value'");
	check_error("[agent]\nsocket ; = /x\n", 2, "expected 'key = value'");
	check_error("[agent]\n= /x\n", 2,
	    "unknown key '' in [agent]");
	check_error("[bot]\n", 1, "missing bot name in [bot NAME]");
	check_error("[bot   ]\n", 1, "missing bot name in [bot NAME]");

	check_error("[bot a]\nbackend = tpm\n\n[bot a]\nbackend = tpm\n", 4,
	    "duplicate bot 'a' (first defined at line 1)");

	/* Bot names. */
	check_error("[bot .hidden]\n", 1, "invalid bot name '.hidden': use 1 "
	    "to 64 of A-Z a-z 0-9 . _ -, not starting with '.'");
	check_error("[bot a/b]\n", 1, "invalid bot name 'a/b': use 1 "
	    "to 64 of A-Z a-z 0-9 . _ -, not starting with '.'");
	check_error("[bot a b]\n", 1, "invalid bot name 'a b': use 1 "
	    "to 64 of A-Z a-z 0-9 . _ -, not starting with '.'");
	check_error("[bot caf\xc3\xa9]\n", 1, "invalid bot name "
	    "'caf\xc3\xa9': use 1 to 64 of A-Z a-z 0-9 . _ -, not starting "
	    "with '.'");
	memset(name, 'n', 65);
	name[65] = '\0';
	snprintf(text, sizeof(text), "[bot %s]\n", name);
	snprintf(text + 100, sizeof(text) - 100, "invalid bot name '%s': use "
	    "1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.'", name);
	check_error(text, 1, text + 100);
	/* 64 bytes are fine, and far beyond inih's 50-byte section names. */
	name[64] = '\0';
	snprintf(text, sizeof(text), "[bot %s]\nbackend = tpm\n", name);
	cfg = check_ok(text);
	assert_string_equal(cfg->bots[0].name, name);
	config_free(cfg);
	/* Two names inih would have cut to the same 50 bytes. */
	name[63] = 'x';
	snprintf(text, sizeof(text), "[bot %s]\nbackend = tpm\n"
	    "[bot %.63sy]\nbackend = tpm\n", name, name);
	cfg = check_ok(text);
	assert_int_equal(cfg->nbots, 2);
	config_free(cfg);
	cfg = check_ok("[bot a.b_c-D9]\nbackend = tpm\n");
	config_free(cfg);
}

static void
test_control_characters(void **state)
{
	check_error("[agent]\ntcti = a\tb\n", 2,
	    "control character in the value of 'tcti'");
	check_error_len("[agent]\ntcti = a\0b\n",
	    sizeof("[agent]\ntcti = a\0b\n") - 1, 2,
	    "control character in line");
	check_error("[agent]\ntcti = a\x7f\n", 2, "control character in line");
	check_error("[agent]\ntcti = a\rb\n", 2, "control character in line");
	check_error("[agent]\ntcti = a\x1b[31m\n", 2,
	    "control character in line");
	check_error("[agent]\nso\tcket = /a\n", 2,
	    "control character in key name");
	check_error("[agent]\ntcti =\n", 2, "missing value for 'tcti'");
	check_error("[agent]\ntcti = ; only a comment\n", 2,
	    "missing value for 'tcti'");
}

static void
test_agent_values(void **state)
{
	struct botid_agent_config *cfg;
	char text[256];

	check_error("[agent]\nsocket_mode = 0666\n", 2, "socket_mode 0666 "
	    "gives other users access; share the socket through "
	    "socket_group instead");
	check_error("[agent]\nsocket_mode = 0604\n", 2, "socket_mode 0604 "
	    "gives other users access; share the socket through "
	    "socket_group instead");
	check_error("[agent]\nsocket_mode = 0661\n", 2, "socket_mode 0661 "
	    "gives other users access; share the socket through "
	    "socket_group instead");
	check_error("[agent]\nsocket_mode = 4660\n", 2,
	    "socket_mode 4660 sets setuid, setgid or sticky bits");
	check_error("[agent]\nsocket_mode = 0688\n", 2,
	    "socket_mode must be octal permission bits such as 0660");
	check_error("[agent]\nsocket_mode = 0x1a0\n", 2,
	    "socket_mode must be octal permission bits such as 0660");
	check_error("[agent]\nsocket_mode = 17777\n", 2,
	    "socket_mode must be octal permission bits such as 0660");
	check_error("[agent]\nsocket_mode = -660\n", 2,
	    "socket_mode must be octal permission bits such as 0660");
	cfg = check_ok("[agent]\nsocket_mode = 600\n");
	assert_int_equal(cfg->socket_mode, 0600);
	config_free(cfg);
	cfg = check_ok("[agent]\nsocket_mode = 0\n");
	assert_int_equal(cfg->socket_mode, 0);
	config_free(cfg);

	check_error("[agent]\nsocket = run/a.sock\n", 2,
	    "socket: must be an absolute path");
	snprintf(text, sizeof(text), "[agent]\nsocket = /%0107d\n", 0);
	check_error(text, 2, "socket: path longer than 107 bytes");
	snprintf(text, sizeof(text), "[agent]\nsocket = /%0106d\n", 0);
	cfg = check_ok(text);
	config_free(cfg);
	check_error("[agent]\nstate_dir = var/lib\n", 2,
	    "state_dir: must be an absolute path");
	check_error("[agent]\naudit_log = audit.log\n", 2,
	    "audit_log: must be an absolute path");
	check_error("[agent]\naudit_log = None\n", 2,
	    "audit_log: must be an absolute path");

	check_error("[agent]\nmax_connections = 0\n", 2,
	    "max_connections must be a whole number from 1 to 65536");
	check_error("[agent]\nmax_connections = 65537\n", 2,
	    "max_connections must be a whole number from 1 to 65536");
	check_error("[agent]\nmax_connections = -1\n", 2,
	    "max_connections must be a whole number from 1 to 65536");
	check_error("[agent]\nmax_connections = +5\n", 2,
	    "max_connections must be a whole number from 1 to 65536");
	check_error("[agent]\nmax_connections = 10k\n", 2,
	    "max_connections must be a whole number from 1 to 65536");
	check_error("[agent]\nmax_connections = 99999999999999999999999\n", 2,
	    "max_connections must be a whole number from 1 to 65536");
	check_error("[agent]\nidle_timeout = 86401\n", 2,
	    "idle_timeout must be a whole number from 1 to 86400");
	check_error("[agent]\nidle_timeout = 0\n", 2,
	    "idle_timeout must be a whole number from 1 to 86400");
	check_error("[agent]\ntpm_loaded_keys = 65\n", 2,
	    "tpm_loaded_keys must be a whole number from 1 to 64");
	check_error("[agent]\npkcs11_sessions = 0\n", 2,
	    "pkcs11_sessions must be a whole number from 1 to 64");

	check_error("[agent]\nsocket_group = botid-no-such-group\n", 2,
	    "socket_group: unknown group 'botid-no-such-group'");
	check_error("[agent]\nsocket_group = 4294967295\n", 2,
	    "socket_group: group id '4294967295' out of range");
	cfg = check_ok("[agent]\nsocket_group = 4294967294\n");
	assert_int_equal(cfg->socket_gid, 4294967294u);
	config_free(cfg);
	cfg = check_ok("[agent]\nsocket_group = nogroup\n");
	assert_int_equal(cfg->socket_gid, getgrnam("nogroup")->gr_gid);
	config_free(cfg);

	cfg = check_ok("[agent]\n");
	assert_int_equal(cfg->renew_percent, 50);
	config_free(cfg);
	cfg = check_ok("[agent]\nrenew_at = 25%\n");
	assert_int_equal(cfg->renew_percent, 25);
	config_free(cfg);
	check_error("[agent]\nrenew_at = 25\n", 2,
	    "renew_at must be a percentage from 10% to 90%");
	check_error("[agent]\nrenew_at = 95%\n", 2,
	    "renew_at must be a percentage from 10% to 90%");
	check_error("[agent]\nrenew_at = 5%\n", 2,
	    "renew_at must be a percentage from 10% to 90%");
	check_error("[agent]\nrenew_at = %\n", 2,
	    "renew_at must be a percentage from 10% to 90%");
	check_error("[agent]\nrenew_at = 1000000%\n", 2,
	    "renew_at must be a percentage from 10% to 90%");

	/* Rotation: durations with units, and their bounds. */
	cfg = check_ok("[agent]\n[bot t]\nbackend = tpm\nallow = uid:0\n");
	assert_int_equal(cfg->rotate_grace, 60);
	assert_int_equal(cfg->bots[0].rotate_every, 0);
	config_free(cfg);
	cfg = check_ok("[agent]\nrotate_grace = 5m\n[bot t]\nbackend = tpm\n"
	    "allow = uid:0\nrotate_every = 24h\n");
	assert_int_equal(cfg->rotate_grace, 300);
	assert_int_equal(cfg->bots[0].rotate_every, 86400);
	config_free(cfg);
	cfg = check_ok("[agent]\nrotate_grace = 90\n[bot t]\nbackend = tpm\n"
	    "allow = uid:0\nrotate_every = 7d\n");
	assert_int_equal(cfg->rotate_grace, 90);
	assert_int_equal(cfg->bots[0].rotate_every, 7 * 86400);
	config_free(cfg);
	cfg = check_ok("[agent]\n[bot t]\nbackend = tpm\nallow = uid:0\n"
	    "rotate_every = none\n");
	assert_int_equal(cfg->bots[0].rotate_every, 0);
	config_free(cfg);
	check_error("[agent]\nrotate_grace = 0s\n", 2,
	    "rotate_grace must be a duration from 1s to 1d (such as 60s or 5m)");
	check_error("[agent]\nrotate_grace = 2d\n", 2,
	    "rotate_grace must be a duration from 1s to 1d (such as 60s or 5m)");
	check_error("[agent]\nrotate_grace = 5x\n", 2,
	    "rotate_grace must be a duration from 1s to 1d (such as 60s or 5m)");
	check_error("[agent]\nrotate_grace = s\n", 2,
	    "rotate_grace must be a duration from 1s to 1d (such as 60s or 5m)");
	check_error("[agent]\nrotate_grace = 99999999999999999999d\n", 2,
	    "rotate_grace must be a duration from 1s to 1d (such as 60s or 5m)");
	check_error("[agent]\n[bot t]\nbackend = tpm\nallow = uid:0\n"
	    "rotate_every = 9s\n", 5, "rotate_every must be none or a duration "
	    "from 10s to 365d (such as 24h)");
	check_error("[agent]\n[bot t]\nbackend = tpm\nallow = uid:0\n"
	    "rotate_every = 366d\n", 5, "rotate_every must be none or a "
	    "duration from 10s to 365d (such as 24h)");

	/* max_queue_wait: 0, ms, s, a bare number of seconds, m; bounds. */
	cfg = check_ok("[agent]\nmax_queue_wait = 0\n");
	assert_int_equal(cfg->max_queue_wait_ms, 0);
	config_free(cfg);
	cfg = check_ok("[agent]\nmax_queue_wait = 1ms\n");
	assert_int_equal(cfg->max_queue_wait_ms, 1);
	config_free(cfg);
	cfg = check_ok("[agent]\nmax_queue_wait = 250ms\n");
	assert_int_equal(cfg->max_queue_wait_ms, 250);
	config_free(cfg);
	cfg = check_ok("[agent]\nmax_queue_wait = 2s\n");
	assert_int_equal(cfg->max_queue_wait_ms, 2000);
	config_free(cfg);
	cfg = check_ok("[agent]\nmax_queue_wait = 5\n");
	assert_int_equal(cfg->max_queue_wait_ms, 5000);
	config_free(cfg);
	cfg = check_ok("[agent]\nmax_queue_wait = 60m\n");
	assert_int_equal(cfg->max_queue_wait_ms, 3600000);
	config_free(cfg);
	cfg = check_ok("[agent]\nmax_queue_wait = 1h\n");
	assert_int_equal(cfg->max_queue_wait_ms, 3600000);
	config_free(cfg);
#define QW_ERR "max_queue_wait must be 0 (no bound) or a duration from 1ms " \
	    "to 1h (such as 250ms, 2s or 1m)"
	check_error("[agent]\nmax_queue_wait = 61m\n", 2, QW_ERR);
	check_error("[agent]\nmax_queue_wait = 3600001ms\n", 2, QW_ERR);
	check_error("[agent]\nmax_queue_wait = 2h\n", 2, QW_ERR);
	check_error("[agent]\nmax_queue_wait = ms\n", 2, QW_ERR);
	check_error("[agent]\nmax_queue_wait = s\n", 2, QW_ERR);
	check_error("[agent]\nmax_queue_wait = -1\n", 2, QW_ERR);
	check_error("[agent]\nmax_queue_wait = 1.5s\n", 2, QW_ERR);
	check_error("[agent]\nmax_queue_wait = 99999999999999999999ms\n", 2,
	    QW_ERR);
	check_error("[agent]\nmax_queue_wait = 1s\nmax_queue_wait = 2s\n", 3,
	    "duplicate key 'max_queue_wait' (first set at line 2)");
#undef QW_ERR

	check_error("[agent]\nuser = root\n", 2,
	    "user: 'root' is root; name an unprivileged user");
	check_error("[agent]\nuser = 0\n", 2,
	    "user: '0' is root; name an unprivileged user");
	check_error("[agent]\nuser = botid-no-such-user\n", 2,
	    "user: unknown user 'botid-no-such-user'");
	check_error("[agent]\nuser = 4294967295\n", 2,
	    "user: user id '4294967295' out of range");
	cfg = check_ok("[agent]\nuser = nobody\n");
	assert_string_equal(cfg->user, "nobody");
	assert_int_equal(cfg->user_uid, getpwnam("nobody")->pw_uid);
	config_free(cfg);
	cfg = check_ok("[agent]\n");
	assert_null(cfg->user);
	config_free(cfg);

	check_error("[agent]\nsocket = /a\nsocket = /b\n", 3,
	    "duplicate key 'socket' (first set at line 2)");
	check_error("[agent]\naudit_log = none\naudit_log = none\n", 3,
	    "duplicate key 'audit_log' (first set at line 2)");
}

static void
test_bot_values(void **state)
{
	check_error("[bot a]\n", 1, "bot 'a': missing backend (tpm or pkcs11)");
	check_error("[bot a]\nallow = uid:0\n", 1,
	    "bot 'a': missing backend (tpm or pkcs11)");
	check_error("[bot a]\nbackend = TPM\n", 2,
	    "backend must be tpm or pkcs11, not 'TPM'");
	check_error("[bot a]\nbackend = tpm\nbackend = tpm\n", 3,
	    "duplicate key 'backend' (first set at line 2)");
	check_error("[bot a]\nbackend = tpm\nkey_type = ed25519\n", 3,
	    "key_type must be ecdsa-p256, ecdsa-p384, rsa-2048 or rsa-3072, "
	    "not 'ed25519'");

	/* pkcs11-only keys in a tpm bot, wherever backend comes. */
	check_error("[bot a]\nmodule = /usr/lib/p11.so\nbackend = tpm\n", 2,
	    "bot 'a': 'module' applies only to pkcs11 bots");
	check_error("[bot a]\nbackend = tpm\ntoken = t\n", 3,
	    "bot 'a': 'token' applies only to pkcs11 bots");
	check_error("[bot a]\nbackend = tpm\npin_file = /p\n", 3,
	    "bot 'a': 'pin_file' applies only to pkcs11 bots");
	check_error("[bot a]\nbackend = tpm\npin_credential = p\n", 3,
	    "bot 'a': 'pin_credential' applies only to pkcs11 bots");

	/* A pkcs11 bot needs module, token and one PIN source. */
	check_error("[bot ok]\nbackend = tpm\n"
	    "[bot hsm]\nbackend = pkcs11\nmodule = /m.so\npin_file = /p\n", 3,
	    "bot 'hsm': a pkcs11 bot needs 'token'");
	check_error("[bot hsm]\nbackend = pkcs11\ntoken = t\npin_file = /p\n", 1,
	    "bot 'hsm': a pkcs11 bot needs 'module'");
	check_error("[bot hsm]\nbackend = pkcs11\ntoken = t\nmodule = /m.so\n", 1,
	    "bot 'hsm': a pkcs11 bot needs pin_file or pin_credential");
	check_error("[bot hsm]\nbackend = pkcs11\ntoken = t\nmodule = /m.so\n"
	    "pin_credential = c\npin_file = /p\n", 6,
	    "bot 'hsm': set pin_file or pin_credential, not both");
	check_error("[bot hsm]\nbackend = pkcs11\ntoken = t\nmodule = /m.so\n"
	    "pin_file = /p\npin_credential = c\n", 6,
	    "bot 'hsm': set pin_file or pin_credential, not both");
	check_error("[bot hsm]\nmodule = m.so\n", 2,
	    "module: must be an absolute path");
	check_error("[bot hsm]\npin_file = pin\n", 2,
	    "pin_file: must be an absolute path");
	check_error("[bot hsm]\npin_credential = /run/creds/pin\n", 2,
	    "pin_credential must be a credential name, not a path");
	check_error("[bot hsm]\npin_credential = ..\n", 2,
	    "pin_credential must be a credential name, not a path");
	check_error("[bot hsm]\ntoken = 012345678901234567890123456789012\n",
	    2, "token: a PKCS#11 token label has at most 32 bytes");
}

static void
test_scopes(void **state)
{
	struct botid_agent_config *cfg;
	const struct botid_bot_config *b;
	char text[4096];
	size_t i, o;

	cfg = check_ok("[bot a]\nbackend = tpm\n"
	    "scopes = inventory:read inventory:write  x/y.z-_\n"
	    "max_token_ttl = 86400\n"
	    "[bot b]\nbackend = tpm\n");
	b = config_find_bot(cfg, "a");
	assert_non_null(b);
	assert_int_equal(b->nscopes, 3);
	assert_string_equal(b->scopes[0], "inventory:read");
	assert_string_equal(b->scopes[1], "inventory:write");
	assert_string_equal(b->scopes[2], "x/y.z-_");
	assert_int_equal(b->max_token_ttl, 86400);
	/* No scopes: tokens carry none. The default lifetime is 300 s. */
	b = config_find_bot(cfg, "b");
	assert_int_equal(b->nscopes, 0);
	assert_int_equal(b->max_token_ttl, BOTID_DEFAULT_TOKEN_TTL);
	assert_int_equal(BOTID_DEFAULT_TOKEN_TTL, 300);
	config_free(cfg);

	check_error("[bot a]\nbackend = tpm\nscopes =\n", 3,
	    "missing value for 'scopes'");

	check_error("[bot a]\nbackend = tpm\nscopes = a b a\n", 3,
	    "scopes: duplicate scope 'a'");
	check_error("[bot a]\nbackend = tpm\nscopes = ok \"quoted\"\n", 3,
	    "scopes: invalid scope '\"quoted\"': use 1 to 64 of "
	    "A-Z a-z 0-9 : . _ / -");
	check_error("[bot a]\nbackend = tpm\nscopes = admin:*\n", 3,
	    "scopes: invalid scope 'admin:*': use 1 to 64 of "
	    "A-Z a-z 0-9 : . _ / -");
	check_error("[bot a]\nbackend = tpm\nscopes = a\nscopes = b\n", 4,
	    "duplicate key 'scopes' (first set at line 3)");
	o = (size_t)snprintf(text, sizeof(text),
	    "[bot a]\nbackend = tpm\nscopes =");
	for (i = 0; i <= BOTID_MAX_SCOPES; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, " s%zu", i);
	snprintf(text + o, sizeof(text) - o, "\n");
	check_error(text, 3, "scopes: more than 32 scopes");
	memset(text, 0, sizeof(text));
	o = (size_t)snprintf(text, sizeof(text),
	    "[bot a]\nbackend = tpm\nscopes = ");
	memset(text + o, 'x', BOTID_MAX_SCOPE + 1);
	text[o + BOTID_MAX_SCOPE + 1] = '\n';
	check_error(text, 3, "scopes: invalid scope 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'"
	    ": use 1 to 64 of A-Z a-z 0-9 : . _ / -");

	check_error("[bot a]\nbackend = tpm\nmax_token_ttl = 0\n", 3,
	    "max_token_ttl must be a whole number from 1 to 86400");
	check_error("[bot a]\nbackend = tpm\nmax_token_ttl = 86401\n", 3,
	    "max_token_ttl must be a whole number from 1 to 86400");
	check_error("[bot a]\nbackend = tpm\nmax_token_ttl = 1h\n", 3,
	    "max_token_ttl must be a whole number from 1 to 86400");
}

static void
test_allow(void **state)
{
	struct botid_agent_config *cfg;
	char text[8192];
	size_t off;
	int i;

#define BOT "[bot a]\nbackend = tpm\n"
	check_error(BOT "allow = uid\n", 3,
	    "allow: term 'uid' is not uid:, gid:, exe: or unit:");
	check_error(BOT "allow = pid:1\n", 3,
	    "allow: term 'pid:1' is not uid:, gid:, exe: or unit:");
	check_error(BOT "allow = UID:0\n", 3,
	    "allow: term 'UID:0' is not uid:, gid:, exe: or unit:");
	check_error(BOT "allow = uid:\n", 3, "allow: term 'uid:' has no value");
	check_error(BOT "allow = uid:0 exe:\n", 3,
	    "allow: term 'exe:' has no value");
	check_error(BOT "allow = uid:botid-no-such-user\n", 3,
	    "allow: unknown user 'botid-no-such-user'");
	check_error(BOT "allow = gid:botid-no-such-group\n", 3,
	    "allow: unknown group 'botid-no-such-group'");
	check_error(BOT "allow = uid:4294967295\n", 3,
	    "allow: user id '4294967295' out of range");
	check_error(BOT "allow = uid:-1\n", 3,
	    "allow: unknown user '-1'");
	check_error(BOT "allow = exe:usr/bin/x\n", 3,
	    "allow: exe:usr/bin/x must be an absolute path");
	check_error(BOT "allow = exe:/usr//bin/x\n", 3,
	    "allow: exe:/usr//bin/x must be normalised (empty component)");
	check_error(BOT "allow = exe:/usr/bin/x/\n", 3,
	    "allow: exe:/usr/bin/x/ must be normalised (empty component)");
	check_error(BOT "allow = exe:/usr/./bin/x\n", 3,
	    "allow: exe:/usr/./bin/x must be normalised (no . or .. "
	    "components)");
	check_error(BOT "allow = exe:/usr/bin/..\n", 3,
	    "allow: exe:/usr/bin/.. must be normalised (no . or .. "
	    "components)");
	check_error(BOT "allow = exe:/\n", 3, "allow: exe:/ must name a file");
	check_error(BOT "allow = unit:foo.socket\n", 3, "allow: "
	    "unit:foo.socket is not a valid NAME.service or NAME.scope");
	check_error(BOT "allow = unit:foo\n", 3, "allow: "
	    "unit:foo is not a valid NAME.service or NAME.scope");
	check_error(BOT "allow = unit:.service\n", 3, "allow: "
	    "unit:.service is not a valid NAME.service or NAME.scope");
	check_error(BOT "allow = unit:f$o.service\n", 3, "allow: "
	    "unit:f$o.service is not a valid NAME.service or NAME.scope");
	check_error(BOT "allow = uid:0 uid:1\n", 3, "allow: two uid terms in "
	    "one line can never both match; write alternatives as separate "
	    "allow lines");
	check_error(BOT "allow = exe:/a uid:0 exe:/b\n", 3, "allow: two exe "
	    "terms in one line can never both match; write alternatives as "
	    "separate allow lines");
	check_error(BOT "allow = unit:a.service unit:b.service\n", 3,
	    "allow: two unit terms in one line can never both match; write "
	    "alternatives as separate allow lines");

	/* Several gid terms may all hold, and spaces may repeat. */
	cfg = check_ok(BOT "allow =   gid:0    gid:nogroup  "
	    "unit:getty@tty1.service   \n"
	    "allow = unit:foo\\x2dbar.service uid:nobody\n");
	assert_int_equal(cfg->bots[0].allow[0].nterms, 3);
	assert_string_equal(cfg->bots[0].allow[0].terms[2].text,
	    "getty@tty1.service");
	assert_string_equal(cfg->bots[0].allow[1].terms[0].text,
	    "foo\\x2dbar.service");
	assert_int_equal(cfg->bots[0].allow[1].terms[1].id,
	    getpwnam("nobody")->pw_uid);
	config_free(cfg);

	/* 16 terms per line and 64 lines per bot, no more. */
	off = (size_t)snprintf(text, sizeof(text), BOT "allow =");
	for (i = 0; i < 16; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    " gid:%d", i);
	snprintf(text + off, sizeof(text) - off, "\n");
	cfg = check_ok(text);
	assert_int_equal(cfg->bots[0].allow[0].nterms, 16);
	config_free(cfg);
	snprintf(text + off, sizeof(text) - off, " gid:16\n");
	check_error(text, 3, "allow: more than 16 terms in one line");

	off = (size_t)snprintf(text, sizeof(text), BOT);
	for (i = 0; i < 64; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "allow = uid:%d\n", i);
	cfg = check_ok(text);
	assert_int_equal(cfg->bots[0].nallow, 64);
	assert_int_equal(cfg->bots[0].allow[63].terms[0].id, 63);
	assert_int_equal(cfg->bots[0].allow[63].line, 66);
	config_free(cfg);
	snprintf(text + off, sizeof(text) - off, "allow = uid:64\n");
	check_error(text, 67, "bot 'a': more than 64 allow lines");
#undef BOT
}

/* admin: allow lines in [agent], repeatable, none by default. */
static void
test_admin(void **state)
{
	struct botid_agent_config *cfg;
	char text[4096];
	size_t off;
	int i;

	cfg = check_ok("");
	assert_int_equal(cfg->nadmin, 0);
	assert_null(cfg->admin);
	config_free(cfg);

	cfg = check_ok("[agent]\nadmin = uid:0\n"
	    "admin = uid:nobody gid:nogroup exe:/usr/bin/botid\n");
	assert_int_equal(cfg->nadmin, 2);
	assert_int_equal(cfg->admin[0].nterms, 1);
	assert_int_equal(cfg->admin[0].terms[0].kind, BOTID_ALLOW_UID);
	assert_int_equal(cfg->admin[0].terms[0].id, 0);
	assert_int_equal(cfg->admin[0].line, 2);
	assert_int_equal(cfg->admin[1].nterms, 3);
	assert_int_equal(cfg->admin[1].terms[0].id,
	    getpwnam("nobody")->pw_uid);
	assert_string_equal(cfg->admin[1].terms[2].text, "/usr/bin/botid");
	assert_int_equal(cfg->admin[1].line, 3);
	config_free(cfg);

	/* The same syntax and the same checks as a bot's allow. */
	check_error("[agent]\nadmin = pid:1\n", 2,
	    "allow: term 'pid:1' is not uid:, gid:, exe: or unit:");
	check_error("[agent]\nadmin =\n", 2, "missing value for 'admin'");
	check_error("[agent]\nadmin = uid:0 uid:1\n", 2, "allow: two uid "
	    "terms in one line can never both match; write alternatives as "
	    "separate allow lines");
	check_error("[bot a]\nbackend = tpm\nadmin = uid:0\n", 3,
	    "unknown key 'admin' in [bot a]");

	off = (size_t)snprintf(text, sizeof(text), "[agent]\n");
	for (i = 0; i < 64; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "admin = uid:%d\n", i);
	cfg = check_ok(text);
	assert_int_equal(cfg->nadmin, 64);
	config_free(cfg);
	snprintf(text + off, sizeof(text) - off, "admin = uid:64\n");
	check_error(text, 66, "more than 64 admin lines");
}

static void
test_exe_symlink_warns(void **state)
{
	struct botid_agent_config *cfg;
	char link[256], text[512];

	/* Loads (the file may change later) but logs that it cannot match. */
	snprintf(link, sizeof(link), "%s/sh-link", tmpdir);
	assert_int_equal(symlink("/bin/sh", link), 0);
	snprintf(text, sizeof(text), "[bot a]\nbackend = tpm\n"
	    "allow = exe:%s\n", link);
	cfg = check_ok(text);
	assert_string_equal(cfg->bots[0].allow[0].terms[0].text, link);
	config_free(cfg);
	unlink(link);
}

static void
test_too_many_bots(void **state)
{
	struct botid_agent_config *cfg;
	char *text;
	size_t cap = 64 * (BOTID_MAX_BOTS + 1), off = 0;
	unsigned i;

	text = malloc(cap);
	assert_non_null(text);
	for (i = 0; i < BOTID_MAX_BOTS; i++)
		off += (size_t)snprintf(text + off, cap - off,
		    "[bot b%u]\nbackend = tpm\n", i);
	cfg = check_ok(text);
	assert_int_equal(cfg->nbots, BOTID_MAX_BOTS);
	assert_non_null(config_find_bot(cfg, "b4095"));
	config_free(cfg);
	snprintf(text + off, cap - off, "[bot extra]\nbackend = tpm\n");
	check_error(text, 2 * BOTID_MAX_BOTS + 1, "more than 4096 bots");
	free(text);
}

static void
test_file_errors(void **state)
{
	struct botid_agent_config *cfg = (void *)1;
	char err[512], want[1024], path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)),
	    BOTID_ERR_IO);
	assert_null(cfg);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);

	cfg = (void *)1;
	assert_int_equal(config_load(tmpdir, &cfg, err, sizeof(err)),
	    BOTID_ERR_CONFIG);
	assert_null(cfg);
	snprintf(want, sizeof(want), "%s: not a regular file", tmpdir);
	assert_string_equal(err, want);

	/* A FIFO must neither hang nor be read. */
	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)),
	    BOTID_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s: not a regular file", path);
	assert_string_equal(err, want);
	unlink(path);

	write_file(conf, "[agent]\n", 8, 0646);
	assert_int_equal(config_load(conf, &cfg, err, sizeof(err)),
	    BOTID_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s: writable by other users; refusing "
	    "to trust it", conf);
	assert_string_equal(err, want);

	/* Exactly the limit is fine (all blank lines); one byte more is not. */
	write_file(conf, "", 0, 0644);
	fd = open(conf, O_WRONLY | O_CLOEXEC);
	assert_true(fd != -1);
	{
		static char block[64 * 1024];
		size_t i;

		memset(block, '\n', sizeof(block));
		for (i = 0; i < BOTID_MAX_CONFIG_FILE / sizeof(block); i++)
			assert_int_equal(write(fd, block, sizeof(block)),
			    (ssize_t)sizeof(block));
	}
	assert_int_equal(close(fd), 0);
	assert_int_equal(config_load(conf, &cfg, err, sizeof(err)), 0);
	config_free(cfg);
	fd = open(conf, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd != -1);
	assert_int_equal(write(fd, "\n", 1), 1);
	assert_int_equal(close(fd), 0);
	assert_int_equal(config_load(conf, &cfg, err, sizeof(err)),
	    BOTID_ERR_CONFIG);
	assert_null(cfg);
	snprintf(want, sizeof(want), "%s: larger than 1048576 bytes", conf);
	assert_string_equal(err, want);

	/* No room for a message is fine too. */
	assert_int_equal(load("[agents]\n", &cfg, err, 0), BOTID_ERR_CONFIG);
	assert_null(cfg);
}

static void
test_nss_failures(void **state)
{
	struct botid_agent_config *cfg;

	/* A small buffer is grown until the entry fits. */
	nss_min_buf = 8192;
	cfg = check_ok("[agent]\nsocket_group = root\n"
	    "[bot a]\nbackend = tpm\nallow = uid:root\n");
	assert_int_equal(cfg->socket_gid, 0);
	assert_int_equal(cfg->bots[0].allow[0].terms[0].id, 0);
	assert_true(nss_calls >= 8);
	config_free(cfg);

	/* ... but not without bound. */
	nss_min_buf = SIZE_MAX;
	check_error("[agent]\nsocket_group = root\n", 2, "socket_group: "
	    "cannot look up group 'root': Numerical result out of range");
	check_error("[bot a]\nallow = uid:root\n", 2, "allow: "
	    "cannot look up user 'root': Numerical result out of range");
	nss_min_buf = 0;

	nss_error = EIO;
	check_error("[bot a]\nallow = uid:root\n", 2,
	    "allow: cannot look up user 'root': Input/output error");
	check_error("[bot a]\nallow = gid:root\n", 2,
	    "allow: cannot look up group 'root': Input/output error");
	/* Numbers need no lookup. */
	nss_calls = 0;
	cfg = check_ok("[bot a]\nbackend = tpm\nallow = uid:0 gid:0\n");
	assert_int_equal(nss_calls, 0);
	config_free(cfg);

	/* POSIX lets "not found" come back as an error number. */
	nss_error = ENOENT;
	check_error("[bot a]\nallow = uid:root\n", 2,
	    "allow: unknown user 'root'");
	nss_error = ESRCH;
	check_error("[bot a]\nallow = gid:root\n", 2,
	    "allow: unknown group 'root'");
}

static void
test_names(void **state)
{
	enum botid_key_type t;

	assert_string_equal(config_key_type_name(BOTID_KEY_ECDSA_P256),
	    "ecdsa-p256");
	assert_string_equal(config_key_type_name(BOTID_KEY_ECDSA_P384),
	    "ecdsa-p384");
	assert_string_equal(config_key_type_name(BOTID_KEY_RSA_2048),
	    "rsa-2048");
	assert_string_equal(config_key_type_name(BOTID_KEY_RSA_3072),
	    "rsa-3072");
	assert_null(config_key_type_name(0));
	assert_null(config_key_type_name(99));
	assert_string_equal(config_backend_name(BOTID_BACKEND_TPM), "tpm");
	assert_string_equal(config_backend_name(BOTID_BACKEND_PKCS11),
	    "pkcs11");
	assert_null(config_backend_name(0));

	assert_int_equal(config_key_type_parse("rsa-2048", &t), 0);
	assert_int_equal(t, BOTID_KEY_RSA_2048);
	assert_int_equal(config_key_type_parse("ecdsa-p384", &t), 0);
	assert_int_equal(t, BOTID_KEY_ECDSA_P384);
	assert_int_equal(config_key_type_parse("RSA-2048", &t),
	    BOTID_ERR_INVALID);
	assert_int_equal(t, 0);
	assert_int_equal(config_key_type_parse("", &t), BOTID_ERR_INVALID);
	assert_int_equal(config_key_type_parse(NULL, &t), BOTID_ERR_INVALID);

	config_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults, test_setup),
		cmocka_unit_test_setup(test_full, test_setup),
		cmocka_unit_test_setup(test_exe_identity, test_setup),
		cmocka_unit_test_setup(test_syntax_variants, test_setup),
		cmocka_unit_test_setup(test_line_numbers, test_setup),
		cmocka_unit_test_setup(test_long_lines, test_setup),
		cmocka_unit_test_setup(test_inline_pin, test_setup),
		cmocka_unit_test_setup(test_sections, test_setup),
		cmocka_unit_test_setup(test_control_characters, test_setup),
		cmocka_unit_test_setup(test_agent_values, test_setup),
		cmocka_unit_test_setup(test_bot_values, test_setup),
		cmocka_unit_test_setup(test_scopes, test_setup),
		cmocka_unit_test_setup(test_allow, test_setup),
		cmocka_unit_test_setup(test_admin, test_setup),
		cmocka_unit_test_setup(test_exe_symlink_warns, test_setup),
		cmocka_unit_test_setup(test_too_many_bots, test_setup),
		cmocka_unit_test_setup(test_file_errors, test_setup),
		cmocka_unit_test_setup(test_nss_failures, test_setup),
		cmocka_unit_test_setup(test_names, test_setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
