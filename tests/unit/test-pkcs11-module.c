/*
 * Unit tests for botid-pkcs11: the function list called directly with no
 * agent to reach (every argument and state error, an empty token, fork)
 * or a hostile one that never answers (other threads and fork() go on),
 * the object builder fed with keys and certificates made here and with
 * damaged DER, and the mechanism checks (PSS parameters, DigestInfo).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/botid.h"
#include "pkcs11/mechanisms.h"
#include "pkcs11/objects.h"

static CK_FUNCTION_LIST_PTR f;

static CK_RV
mutex_dummy(void *m)
{
	return CKR_OK;
}

static CK_RV
mutex_create_dummy(void **m)
{
	return CKR_OK;
}

static void
test_not_initialized(void **state)
{
	CK_ULONG n = 0;
	CK_INFO info;

	assert_int_equal(C_GetFunctionList(NULL), CKR_ARGUMENTS_BAD);
	assert_int_equal(C_GetFunctionList(&f), CKR_OK);
	assert_int_equal(f->version.major, 2);
	assert_int_equal(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_int_equal(f->C_GetSlotList(CK_TRUE, NULL, &n),
	    CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_int_equal(f->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL,
	    &n), CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_int_equal(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void
test_initialize_args(void **state)
{
	CK_C_INITIALIZE_ARGS args;

	memset(&args, 0, sizeof(args));
	args.pReserved = &args;
	assert_int_equal(f->C_Initialize(&args), CKR_ARGUMENTS_BAD);
	memset(&args, 0, sizeof(args));
	args.LockMutex = mutex_dummy;
	assert_int_equal(f->C_Initialize(&args), CKR_ARGUMENTS_BAD);
	args.CreateMutex = mutex_create_dummy;
	args.DestroyMutex = mutex_dummy;
	args.UnlockMutex = mutex_dummy;
	assert_int_equal(f->C_Initialize(&args), CKR_CANT_LOCK);
	args.flags = CKF_OS_LOCKING_OK;
	assert_int_equal(f->C_Initialize(&args), CKR_OK);
	assert_int_equal(f->C_Initialize(NULL),
	    CKR_CRYPTOKI_ALREADY_INITIALIZED);
	assert_int_equal(f->C_Finalize(&args), CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
	assert_int_equal(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static int
setup_initialized(void **state)
{
	/* Nobody listens here: the token must come up empty. */
	setenv("BOTID_SOCKET", "/nonexistent/botid-test.sock", 1);
	if (C_GetFunctionList(&f) != CKR_OK || f->C_Initialize(NULL) != CKR_OK)
		return -1;
	return 0;
}

static int
teardown_initialized(void **state)
{
	return f->C_Finalize(NULL) == CKR_OK ? 0 : -1;
}

static void
test_info_and_slots(void **state)
{
	CK_SLOT_ID slots[2];
	CK_ULONG n = 0;
	CK_INFO info;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;

	assert_int_equal(f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_GetInfo(&info), CKR_OK);
	assert_int_equal(info.cryptokiVersion.major, 2);
	assert_int_equal(info.cryptokiVersion.minor, 40);
	assert_memory_equal(info.manufacturerID, "botid ", 6);

	assert_int_equal(f->C_GetSlotList(CK_FALSE, NULL, NULL),
	    CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n),
	    CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 1);
	n = 2;
	assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	assert_int_equal(n, 1);

	assert_int_equal(f->C_GetSlotInfo(slots[0], NULL), CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_GetSlotInfo(slots[0] + 1, &si),
	    CKR_SLOT_ID_INVALID);
	assert_int_equal(f->C_GetSlotInfo(slots[0], &si), CKR_OK);
	assert_true(si.flags & CKF_TOKEN_PRESENT);

	assert_int_equal(f->C_GetTokenInfo(slots[0], NULL), CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_GetTokenInfo(slots[0] + 1, &ti),
	    CKR_SLOT_ID_INVALID);
	assert_int_equal(f->C_GetTokenInfo(slots[0], &ti), CKR_OK);
	assert_memory_equal(ti.label, "botid                           ", 32);
	assert_true(ti.flags & CKF_TOKEN_INITIALIZED);
	assert_false(ti.flags & CKF_LOGIN_REQUIRED);
}

static void
test_mechanisms(void **state)
{
	CK_MECHANISM_TYPE list[32];
	CK_MECHANISM_INFO mi;
	CK_ULONG n = 0;

	assert_int_equal(f->C_GetMechanismList(1, NULL, NULL),
	    CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_GetMechanismList(2, NULL, &n),
	    CKR_SLOT_ID_INVALID);
	assert_int_equal(f->C_GetMechanismList(1, NULL, &n), CKR_OK);
	assert_int_equal(n, 12);
	n = 3;
	assert_int_equal(f->C_GetMechanismList(1, list, &n),
	    CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 12);
	n = 32;
	assert_int_equal(f->C_GetMechanismList(1, list, &n), CKR_OK);
	assert_int_equal(list[0], CKM_ECDSA);

	assert_int_equal(f->C_GetMechanismInfo(1, CKM_ECDSA, NULL),
	    CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_GetMechanismInfo(1, CKM_SHA1_RSA_PKCS, &mi),
	    CKR_MECHANISM_INVALID);
	assert_int_equal(f->C_GetMechanismInfo(1, CKM_ECDSA, &mi), CKR_OK);
	assert_true(mi.flags & CKF_SIGN);
	assert_false(mi.flags & CKF_VERIFY);
	assert_int_equal(f->C_GetMechanismInfo(1, CKM_RSA_PKCS_PSS, &mi),
	    CKR_OK);
	assert_int_equal(mi.ulMinKeySize, 1024);
}

static void
test_session_with_no_agent(void **state)
{
	CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl = { CKA_CLASS, &klass, sizeof(klass) };
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_SESSION_HANDLE s = 0;
	CK_OBJECT_HANDLE found[4];
	CK_SESSION_INFO si;
	CK_BYTE sig[64];
	CK_ULONG n = 0, sig_len = sizeof(sig);

	assert_int_equal(f->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL,
	    NULL), CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_OpenSession(1, 0, NULL, NULL, &s),
	    CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	assert_int_equal(f->C_OpenSession(7, CKF_SERIAL_SESSION, NULL, NULL,
	    &s), CKR_SLOT_ID_INVALID);
	assert_int_equal(f->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL,
	    &s), CKR_OK);
	assert_int_equal(f->C_GetSessionInfo(s, NULL), CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_GetSessionInfo(s + 100, &si),
	    CKR_SESSION_HANDLE_INVALID);
	assert_int_equal(f->C_GetSessionInfo(s, &si), CKR_OK);
	assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);

	/* No agent: a token with no objects, not an error. */
	assert_int_equal(f->C_FindObjects(s, found, 4, &n),
	    CKR_OPERATION_NOT_INITIALIZED);
	assert_int_equal(f->C_FindObjectsInit(s, NULL, 1), CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_FindObjectsInit(s, &tmpl, 1), CKR_OK);
	assert_int_equal(f->C_FindObjectsInit(s, NULL, 0),
	    CKR_OPERATION_ACTIVE);
	assert_int_equal(f->C_FindObjects(s, found, 4, NULL),
	    CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_FindObjects(s, found, 4, &n), CKR_OK);
	assert_int_equal(n, 0);
	assert_int_equal(f->C_FindObjectsFinal(s), CKR_OK);
	assert_int_equal(f->C_FindObjectsFinal(s),
	    CKR_OPERATION_NOT_INITIALIZED);
	assert_int_equal(f->C_GetAttributeValue(s, 5, &tmpl, 1),
	    CKR_OBJECT_HANDLE_INVALID);
	assert_int_equal(f->C_GetAttributeValue(s + 100, 5, &tmpl, 1),
	    CKR_SESSION_HANDLE_INVALID);

	/* Signing: state and argument errors, in the order PKCS#11 gives. */
	assert_int_equal(f->C_SignInit(s, NULL, 5), CKR_ARGUMENTS_BAD);
	mech.mechanism = CKM_MD5_RSA_PKCS;
	assert_int_equal(f->C_SignInit(s, &mech, 5), CKR_MECHANISM_INVALID);
	mech.mechanism = CKM_ECDSA;
	assert_int_equal(f->C_SignInit(s, &mech, 5), CKR_KEY_HANDLE_INVALID);
	assert_int_equal(f->C_SignInit(s + 100, &mech, 5),
	    CKR_SESSION_HANDLE_INVALID);
	assert_int_equal(f->C_Sign(s, sig, 32, sig, &sig_len),
	    CKR_OPERATION_NOT_INITIALIZED);
	assert_int_equal(f->C_SignUpdate(s, sig, 32),
	    CKR_OPERATION_NOT_INITIALIZED);
	assert_int_equal(f->C_SignFinal(s, sig, &sig_len),
	    CKR_OPERATION_NOT_INITIALIZED);

	/* No PIN: a login succeeds once; CKU_SO does not exist here. */
	assert_int_equal(f->C_Login(s, CKU_SO, NULL, 0), CKR_USER_TYPE_INVALID);
	assert_int_equal(f->C_Logout(s), CKR_USER_NOT_LOGGED_IN);
	assert_int_equal(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)"x", 1),
	    CKR_OK);
	assert_int_equal(f->C_Login(s, CKU_USER, NULL, 0),
	    CKR_USER_ALREADY_LOGGED_IN);
	assert_int_equal(f->C_GetSessionInfo(s, &si), CKR_OK);
	assert_int_equal(si.state, CKS_RO_USER_FUNCTIONS);
	assert_int_equal(f->C_Logout(s), CKR_OK);

	assert_int_equal(f->C_GenerateRandom(s, sig, 8),
	    CKR_FUNCTION_NOT_SUPPORTED);
	assert_int_equal(f->C_CreateObject(s, &tmpl, 1, found),
	    CKR_FUNCTION_NOT_SUPPORTED);
	assert_int_equal(f->C_GetFunctionStatus(s), CKR_FUNCTION_NOT_PARALLEL);

	assert_int_equal(f->C_CloseSession(s), CKR_OK);
	assert_int_equal(f->C_CloseSession(s), CKR_SESSION_HANDLE_INVALID);
	assert_int_equal(f->C_OpenSession(1, CKF_SERIAL_SESSION | CKF_RW_SESSION,
	    NULL, NULL, &s), CKR_OK);
	assert_int_equal(f->C_CloseAllSessions(9), CKR_SLOT_ID_INVALID);
	assert_int_equal(f->C_CloseAllSessions(1), CKR_OK);
	assert_int_equal(f->C_GetSessionInfo(s, &si),
	    CKR_SESSION_HANDLE_INVALID);
}

/* A forked child must initialise again: it may not use the parent's state. */
static void
test_fork_child_uninitialised(void **state)
{
	CK_INFO info;
	pid_t pid;
	int status = 0;

	if ((pid = fork()) == 0) {
		if (f->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED)
			_exit(1);
		if (f->C_Initialize(NULL) != CKR_OK ||
		    f->C_GetInfo(&info) != CKR_OK || f->C_Finalize(NULL) != CKR_OK)
			_exit(2);
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(f->C_GetInfo(&info), CKR_OK);
}

static volatile int busy_stop;

static void *
busy_thread(void *arg)
{
	CK_SLOT_ID slots[1];
	CK_ULONG n;
	CK_INFO info;

	(void)arg;
	while (!busy_stop) {
		n = 1;
		(void)f->C_GetInfo(&info);
		(void)f->C_GetSlotList(CK_FALSE, slots, &n);
	}
	return NULL;
}

/*
 * fork() while another thread is inside the module: without the atfork
 * handlers the child inherits a held lock about once in a few forks and
 * hangs (the alarm turns that into a failure).
 */
static void
test_fork_while_busy(void **state)
{
	pthread_t t;
	CK_INFO info;
	pid_t pid;
	int i, status;

	busy_stop = 0;
	assert_int_equal(pthread_create(&t, NULL, busy_thread, NULL), 0);
	for (i = 0; i < 64; i++) {
		if ((pid = fork()) == 0) {
			alarm(5);
			if (f->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED ||
			    f->C_Initialize(NULL) != CKR_OK ||
			    f->C_GetInfo(&info) != CKR_OK)
				_exit(1);
			_exit(0);
		}
		assert_true(pid > 0);
		status = 0;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	busy_stop = 1;
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(f->C_GetInfo(&info), CKR_OK);
}

/* A hostile agent: it accepts one connection and never answers. */
struct hung_agent {
	int		 lfd, cfd;
	pthread_mutex_t	 m;
	pthread_cond_t	 c;
	int		 accepted, opened;
	CK_RV		 open_rv;
};

static void *
hung_agent_accept(void *arg)
{
	struct hung_agent *h = arg;
	int fd = accept(h->lfd, NULL, NULL);

	pthread_mutex_lock(&h->m);
	h->cfd = fd;
	h->accepted = 1;
	pthread_cond_broadcast(&h->c);
	pthread_mutex_unlock(&h->m);
	return NULL;
}

static void *
hung_open(void *arg)
{
	struct hung_agent *h = arg;
	CK_SESSION_HANDLE s = 0;
	CK_RV rv;

	rv = f->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv == CKR_OK)
		(void)f->C_CloseSession(s);
	pthread_mutex_lock(&h->m);
	h->open_rv = rv;
	h->opened = 1;
	pthread_mutex_unlock(&h->m);
	return NULL;
}

/*
 * One thread's C_OpenSession waits on an agent that never answers; another
 * thread's C_GetInfo and C_GetSlotList, and a fork() whose child starts
 * the module afresh, return while it still waits (issue 21: the module
 * held its one mutex across agent round trips, so a hung agent stalled
 * every thread and fork() for the socket's 60 s timeout). The waiting
 * thread ends when the agent's connection is shut down, not on a timer.
 */
static void
test_hung_agent(void **state)
{
	char dir[] = "/tmp/test-pkcs11-hung.XXXXXX", path[64];
	struct sockaddr_un sun;
	/* Not on the stack: the threads may outlive a failed assertion. */
	static struct hung_agent h;
	pthread_t ta, to;
	CK_SLOT_ID slots[2];
	CK_ULONG n = 2;
	CK_INFO info;
	pid_t pid;
	int status = 0, opened;

	(void)state;
	memset(&h, 0, sizeof(h));
	h.cfd = -1;
	pthread_mutex_init(&h.m, NULL);
	pthread_cond_init(&h.c, NULL);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	assert_true((h.lfd = socket(AF_UNIX, SOCK_STREAM, 0)) != -1);
	assert_int_equal(bind(h.lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(h.lfd, 4), 0);
	setenv("BOTID_SOCKET", path, 1);
	assert_int_equal(pthread_create(&ta, NULL, hung_agent_accept, &h), 0);
	assert_int_equal(pthread_create(&to, NULL, hung_open, &h), 0);
	pthread_mutex_lock(&h.m);
	while (!h.accepted)
		pthread_cond_wait(&h.c, &h.m);
	pthread_mutex_unlock(&h.m);
	assert_true(h.cfd != -1);

	/* The opening thread is inside a round trip that cannot end yet. */
	assert_int_equal(f->C_GetInfo(&info), CKR_OK);
	assert_int_equal(f->C_GetSlotList(CK_FALSE, slots, &n), CKR_OK);
	assert_int_equal(n, 1);
	if ((pid = fork()) == 0) {
		alarm(30);
		if (f->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED ||
		    f->C_Initialize(NULL) != CKR_OK ||
		    f->C_GetInfo(&info) != CKR_OK ||
		    f->C_Finalize(NULL) != CKR_OK)
			_exit(1);
		/*
		 * The parent's connection in the making belongs to a thread
		 * the child does not have: exec rather than let a leak
		 * checker (valgrind, LeakSanitizer) count it at exit.
		 */
		execl("/bin/true", "true", (char *)NULL);
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	pthread_mutex_lock(&h.m);
	opened = h.opened;
	pthread_mutex_unlock(&h.m);
	assert_int_equal(opened, 0);

	/* The agent goes away: the session opens on an empty token. */
	shutdown(h.cfd, SHUT_RDWR);
	assert_int_equal(pthread_join(to, NULL), 0);
	assert_int_equal(pthread_join(ta, NULL), 0);
	assert_int_equal(h.open_rv, CKR_OK);
	close(h.cfd);
	close(h.lfd);
	unlink(path);
	rmdir(dir);
	pthread_mutex_destroy(&h.m);
	pthread_cond_destroy(&h.c);
	setenv("BOTID_SOCKET", "/nonexistent/botid-test.sock", 1);
}

/* ---------------------------------------------------------------- objects */

static uint8_t *
spki_of(EVP_PKEY *pkey, size_t *len)
{
	uint8_t *der = NULL;
	int n;

	n = i2d_PUBKEY(pkey, &der);
	assert_true(n > 0);
	*len = (size_t)n;
	return der;
}

/* A self-signed certificate for pkey, DER. */
static uint8_t *
cert_of(EVP_PKEY *pkey, size_t *len)
{
	X509 *x = X509_new();
	uint8_t *der = NULL;
	int n;

	assert_non_null(x);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x),
	    "CN", MBSTRING_ASC, (const unsigned char *)"bot", -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
	assert_int_equal(X509_set_pubkey(x, pkey), 1);
	assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
	n = i2d_X509(x, &der);
	assert_true(n > 0);
	*len = (size_t)n;
	X509_free(x);
	return der;
}

static void
test_objects_ec(void **state)
{
	struct botid_p11_objects objs = { NULL, 0 };
	const struct botid_p11_object *o;
	EVP_PKEY *pkey = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
	uint8_t *spki, *cert, *cert2, buf[256];
	size_t spki_len, cert_len, cert2_len;
	CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE a[3];

	assert_non_null(pkey);
	assert_non_null(other);
	spki = spki_of(pkey, &spki_len);
	cert = cert_of(pkey, &cert_len);
	cert2 = cert_of(other, &cert2_len);

	assert_int_equal(objects_add_bot(&objs, 1, "alpha", spki, spki_len,
	    cert, cert_len), 0);
	assert_int_equal(objs.n, 3);
	/* A certificate for another key is left out. */
	assert_int_equal(objects_add_bot(&objs, 2, "beta", spki, spki_len,
	    cert2, cert2_len), 0);
	assert_int_equal(objs.n, 5);

	assert_null(objects_find(&objs, 4));
	assert_non_null(o = objects_find(&objs, 5));	/* alpha's private key */
	assert_int_equal(o->klass, CKO_PRIVATE_KEY);
	assert_int_equal(o->sig_len, 64);

	a[0].type = CKA_VALUE;
	a[0].pValue = buf;
	a[0].ulValueLen = sizeof(buf);
	assert_int_equal(objects_get_attributes(o, a, 1),
	    CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(a[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	a[0].type = CKA_VENDOR_DEFINED | 42;
	a[0].ulValueLen = sizeof(buf);
	assert_int_equal(objects_get_attributes(o, a, 1),
	    CKR_ATTRIBUTE_TYPE_INVALID);
	a[0].type = CKA_EC_PARAMS;
	a[0].pValue = NULL;
	assert_int_equal(objects_get_attributes(o, a, 1), CKR_OK);
	assert_int_equal(a[0].ulValueLen, 10);	/* OID of P-256 */
	a[0].pValue = buf;
	a[0].ulValueLen = 3;
	assert_int_equal(objects_get_attributes(o, a, 1), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(a[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	a[0].type = CKA_EC_POINT;
	a[0].ulValueLen = sizeof(buf);
	assert_int_equal(objects_get_attributes(o, a, 1), CKR_OK);
	assert_int_equal(a[0].ulValueLen, 67);	/* 04 41 04 x y */
	assert_int_equal(buf[0], 0x04);
	assert_int_equal(buf[1], 65);

	a[0].type = CKA_CLASS;
	a[0].pValue = &klass;
	a[0].ulValueLen = sizeof(klass);
	a[1].type = CKA_LABEL;
	a[1].pValue = "alpha";
	a[1].ulValueLen = 5;
	assert_true(objects_match(o, a, 2));
	a[1].ulValueLen = 4;
	assert_false(objects_match(o, a, 2));
	a[1].type = CKA_SIGN;
	a[1].pValue = &yes;
	a[1].ulValueLen = sizeof(yes);
	assert_true(objects_match(o, a, 2));
	/* Sensitive attributes never match, whatever the value. */
	a[2].type = CKA_VALUE;
	a[2].pValue = NULL;
	a[2].ulValueLen = 0;
	assert_false(objects_match(o, a, 3));

	assert_non_null(o = objects_find(&objs, 7));	/* alpha's certificate */
	a[0].type = CKA_VALUE;
	a[0].pValue = NULL;
	assert_int_equal(objects_get_attributes(o, a, 1), CKR_OK);
	assert_int_equal(a[0].ulValueLen, cert_len);
	assert_null(objects_find(&objs, 11));	/* beta's: wrong key */

	objects_clear(&objs);
	assert_int_equal(objs.n, 0);
	objects_clear(NULL);
	OPENSSL_free(spki);
	OPENSSL_free(cert);
	OPENSSL_free(cert2);
	EVP_PKEY_free(pkey);
	EVP_PKEY_free(other);
}

static void
test_objects_rsa(void **state)
{
	struct botid_p11_objects objs = { NULL, 0 };
	const struct botid_p11_object *o;
	EVP_PKEY *pkey = EVP_RSA_gen(2048);
	CK_ATTRIBUTE a = { CKA_MODULUS, NULL, 0 };
	CK_BYTE buf[8];
	uint8_t *spki;
	size_t spki_len;

	assert_non_null(pkey);
	spki = spki_of(pkey, &spki_len);
	assert_int_equal(objects_add_bot(&objs, 3, "r", spki, spki_len, NULL,
	    0), 0);
	assert_int_equal(objs.n, 2);
	assert_non_null(o = objects_find(&objs, 13));
	assert_int_equal(o->key_type, CKK_RSA);
	assert_int_equal(o->sig_len, 256);
	assert_int_equal(objects_get_attributes(o, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, 256);
	a.type = CKA_PRIVATE_EXPONENT;
	a.pValue = buf;
	a.ulValueLen = sizeof(buf);
	assert_int_equal(objects_get_attributes(o, &a, 1),
	    CKR_ATTRIBUTE_SENSITIVE);
	objects_clear(&objs);
	OPENSSL_free(spki);
	EVP_PKEY_free(pkey);
}

/* Truncated, extended and bit-flipped public keys never crash the parser. */
static void
test_objects_malformed(void **state)
{
	struct botid_p11_objects objs = { NULL, 0 };
	EVP_PKEY *pkey = EVP_EC_gen("P-384");
	uint8_t *spki, *copy;
	size_t spki_len, i;
	int bit, r;

	assert_non_null(pkey);
	spki = spki_of(pkey, &spki_len);
	copy = malloc(spki_len + 1);
	assert_non_null(copy);
	for (i = 0; i < spki_len; i++)
		assert_int_equal(objects_add_bot(&objs, 1, "b", spki, i, NULL,
		    0), BOTID_ERR_INVALID);
	memcpy(copy, spki, spki_len);
	copy[spki_len] = 0;
	assert_int_equal(objects_add_bot(&objs, 1, "b", copy, spki_len + 1,
	    NULL, 0), BOTID_ERR_INVALID);
	assert_int_equal(objs.n, 0);
	for (i = 0; i < spki_len; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(copy, spki, spki_len);
			copy[i] ^= (uint8_t)(1u << bit);
			r = objects_add_bot(&objs, 1, "b", copy, spki_len, NULL, 0);
			assert_true(r == 0 || r == BOTID_ERR_INVALID);
			objects_clear(&objs);
		}
	}
	/* A certificate that does not parse is left out, the keys stay. */
	assert_int_equal(objects_add_bot(&objs, 1, "b", spki, spki_len,
	    (const uint8_t *)"\x30\x03\x02\x01\x01", 5), 0);
	assert_int_equal(objs.n, 2);
	objects_clear(&objs);
	free(copy);
	OPENSSL_free(spki);
	EVP_PKEY_free(pkey);
}

/* ---------------------------------------------------------------- mechanisms */

static const uint8_t digest_info_sha256_prefix[] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
};

static const uint8_t digest_info_sha1_prefix[] = {
	0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a,
	0x05, 0x00, 0x04, 0x14,
};

static void
test_digest_info(void **state)
{
	uint8_t in[64], digest[64];
	size_t digest_len = 1, i, n = sizeof(digest_info_sha256_prefix) + 32;
	uint32_t hash = 9;

	memcpy(in, digest_info_sha256_prefix, sizeof(digest_info_sha256_prefix));
	memset(in + sizeof(digest_info_sha256_prefix), 0xab, 32);
	assert_int_equal(mechanisms_parse_digest_info(in, n, &hash, digest,
	    &digest_len), 0);
	assert_int_equal(hash, BOTID_HASH_SHA256);
	assert_int_equal(digest_len, 32);
	assert_int_equal(digest[31], 0xab);
	for (i = 0; i < n; i++) {
		assert_int_not_equal(mechanisms_parse_digest_info(in, i, &hash,
		    digest, &digest_len), 0);
		assert_int_equal(hash, 0);
		assert_int_equal(digest_len, 0);
	}
	in[n] = 0;
	assert_int_equal(mechanisms_parse_digest_info(in, n + 1, &hash, digest,
	    &digest_len), BOTID_ERR_INVALID);
	/* A bare digest, as some callers send to CKM_RSA_PKCS. */
	assert_int_equal(mechanisms_parse_digest_info(in + 19, 32, &hash,
	    digest, &digest_len), BOTID_ERR_INVALID);
	/* SHA-1 is well formed but not something the agent signs. */
	memcpy(in, digest_info_sha1_prefix, sizeof(digest_info_sha1_prefix));
	assert_int_equal(mechanisms_parse_digest_info(in,
	    sizeof(digest_info_sha1_prefix) + 20, &hash, digest, &digest_len),
	    BOTID_ERR_UNSUPPORTED);
}

static void
test_pss_params(void **state)
{
	CK_RSA_PKCS_PSS_PARAMS p = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
	CK_MECHANISM mech = { CKM_RSA_PKCS_PSS, &p, sizeof(p) };
	const struct botid_p11_mechanism *m;
	uint32_t hash = 0;

	assert_non_null(m = mechanisms_find(CKM_RSA_PKCS_PSS));
	assert_int_equal(mechanisms_check_params(m, &mech, &hash), CKR_OK);
	assert_int_equal(hash, BOTID_HASH_SHA256);
	p.sLen = 20;
	assert_int_equal(mechanisms_check_params(m, &mech, &hash),
	    CKR_MECHANISM_PARAM_INVALID);
	p.sLen = 32;
	p.mgf = CKG_MGF1_SHA384;
	assert_int_equal(mechanisms_check_params(m, &mech, &hash),
	    CKR_MECHANISM_PARAM_INVALID);
	p.mgf = CKG_MGF1_SHA256;
	mech.ulParameterLen = sizeof(p) - 1;
	assert_int_equal(mechanisms_check_params(m, &mech, &hash),
	    CKR_MECHANISM_PARAM_INVALID);
	mech.pParameter = NULL;
	mech.ulParameterLen = 0;
	assert_int_equal(mechanisms_check_params(m, &mech, &hash),
	    CKR_MECHANISM_PARAM_INVALID);
	/* The SHAxxx_ variants must name their own hash. */
	assert_non_null(m = mechanisms_find(CKM_SHA384_RSA_PKCS_PSS));
	mech.pParameter = &p;
	mech.ulParameterLen = sizeof(p);
	assert_int_equal(mechanisms_check_params(m, &mech, &hash),
	    CKR_MECHANISM_PARAM_INVALID);
	/* Mechanisms without parameters refuse them. */
	assert_non_null(m = mechanisms_find(CKM_ECDSA));
	assert_int_equal(mechanisms_check_params(m, &mech, &hash),
	    CKR_MECHANISM_PARAM_INVALID);
	mech.pParameter = NULL;
	mech.ulParameterLen = 0;
	assert_int_equal(mechanisms_check_params(m, &mech, &hash), CKR_OK);
	assert_int_equal(hash, 0);
	assert_null(mechanisms_find(CKM_SHA1_RSA_PKCS));
	assert_int_equal(mechanisms_hash_for_length(48), BOTID_HASH_SHA384);
	assert_int_equal(mechanisms_hash_for_length(20), 0);
}

int
main(void)
{
	const struct CMUnitTest uninitialised[] = {
		cmocka_unit_test(test_not_initialized),
		cmocka_unit_test(test_initialize_args),
	};
	const struct CMUnitTest initialised[] = {
		cmocka_unit_test(test_info_and_slots),
		cmocka_unit_test(test_mechanisms),
		cmocka_unit_test(test_session_with_no_agent),
		cmocka_unit_test(test_fork_child_uninitialised),
		cmocka_unit_test(test_fork_while_busy),
		cmocka_unit_test(test_hung_agent),
	};
	const struct CMUnitTest parts[] = {
		cmocka_unit_test(test_objects_ec),
		cmocka_unit_test(test_objects_rsa),
		cmocka_unit_test(test_objects_malformed),
		cmocka_unit_test(test_digest_info),
		cmocka_unit_test(test_pss_params),
	};
	int failed;

	failed = cmocka_run_group_tests_name("uninitialised", uninitialised,
	    NULL, NULL);
	failed += cmocka_run_group_tests_name("initialised", initialised,
	    setup_initialized, teardown_initialized);
	failed += cmocka_run_group_tests_name("parts", parts, NULL, NULL);
	return failed == 0 ? 0 : 1;
}
