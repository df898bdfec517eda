/*
 * botid-pkcs11: a PKCS#11 2.40 module that shows the bots the calling
 * process may use as one token and signs through botid-agent, so that
 * OpenSSL (libp11's engine), OpenSSH, GnuTLS and pkcs11-tool use a bot's
 * key without knowing about botid. The agent decides from the caller's
 * peer credentials; this module holds no key and no secret.
 *
 * One mutex guards the module's state and one agent connection serves it:
 * requests go out one at a time, as the wire client is for one thread,
 * under a second mutex taken only around a round trip, so that a slow or
 * hung agent holds up only the callers that wait for it, never
 * C_GetInfo, C_GetSlotList, session bookkeeping or fork(). A child after
 * fork() sees an uninitialised module: the parent's connection carries the
 * parent's identity and must not be shared; the module lock is held across
 * fork() (pthread_atfork) so that the child's copy is free, and the
 * child's copy of the agent lock is made anew.
 */
#include "botid-config.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "lib/botid.h"
#include "lib/limits.h"
#include "pkcs11/mechanisms.h"
#include "pkcs11/objects.h"

#define MODULE_SLOT_ID		1ul
#define MODULE_MAX_SESSIONS	4096u
/* Distinct bot names the handle table remembers between refreshes. */
#define MODULE_MAX_NAMES	(4u * BOTID_MAX_BOTS)

struct sign_op {
	int				 active;
	const struct botid_p11_mechanism *mech;
	uint32_t			 hash;		/* 0: from the input */
	char				*bot;
	size_t				 sig_len;
	EVP_MD_CTX			*md;		/* hash-and-sign only */
	int				 updated;	/* C_SignUpdate was used */
};

struct find_op {
	int			 active;
	CK_OBJECT_HANDLE	*handles;
	size_t			 n, pos;
};

struct session {
	CK_SESSION_HANDLE	 handle;
	CK_FLAGS		 flags;
	struct find_op		 find;
	struct sign_op		 sign;
};

static pthread_mutex_t module_lock = PTHREAD_MUTEX_INITIALIZER;
/*
 * Guards module.client. A thread holding module_lock may take it (only
 * module_reset() does); a thread holding it never takes module_lock.
 */
static pthread_mutex_t agent_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t module_atfork_once = PTHREAD_ONCE_INIT;
static int module_atfork_rv;

static struct {
	int			 initialized;
	pid_t			 pid;
	struct botid_client	*client;
	struct botid_p11_objects objects;
	int			 loaded;
	/* Bot names ever seen: a bot's index here makes its handles stable. */
	char			**names;
	size_t			 nnames;
	struct session		*sessions;
	size_t			 nsessions;
	CK_SESSION_HANDLE	 next_session;
	int			 logged_in;
} module;

/* ---------------------------------------------------------------- state */

static void
sign_op_end(struct sign_op *op)
{
	EVP_MD_CTX_free(op->md);
	free(op->bot);
	memset(op, 0, sizeof(*op));
}

static void
find_op_end(struct find_op *op)
{
	free(op->handles);
	memset(op, 0, sizeof(*op));
}

static void
sessions_free(void)
{
	size_t i;

	for (i = 0; i < module.nsessions; i++) {
		sign_op_end(&module.sessions[i].sign);
		find_op_end(&module.sessions[i].find);
	}
	free(module.sessions);
	module.sessions = NULL;
	module.nsessions = 0;
	module.logged_in = 0;
}

/* Frees everything; the module is uninitialised afterwards. */
static void
module_reset(void)
{
	size_t i;

	/* Waits for a round trip in flight (another thread's). */
	(void)pthread_mutex_lock(&agent_lock);
	sessions_free();
	objects_clear(&module.objects);
	botid_close(module.client);
	module.client = NULL;
	for (i = 0; i < module.nnames; i++)
		free(module.names[i]);
	free(module.names);
	memset(&module, 0, sizeof(module));
	(void)pthread_mutex_unlock(&agent_lock);
}

/*
 * fork() in one thread while another holds the lock would leave the child's
 * copy locked for ever: hold it across fork, and release both copies.
 */
static void
module_atfork_prepare(void)
{
	(void)pthread_mutex_lock(&module_lock);
}

static void
module_atfork_release(void)
{
	(void)pthread_mutex_unlock(&module_lock);
}

/*
 * The child has only the thread that forked: a round trip another thread
 * had in flight will never end there, so the agent lock starts afresh.
 */
static void
module_atfork_child(void)
{
	(void)pthread_mutex_init(&agent_lock, NULL);
	(void)pthread_mutex_unlock(&module_lock);
}

static void
module_atfork_register(void)
{
	module_atfork_rv = pthread_atfork(module_atfork_prepare,
	    module_atfork_release, module_atfork_child);
}

/*
 * Takes the lock; fails unless C_Initialize ran in this process. The
 * caller calls module_leave() exactly when this returns CKR_OK.
 */
static CK_RV
module_enter(void)
{
	if (pthread_mutex_lock(&module_lock) != 0)
		return CKR_GENERAL_ERROR;
	if (module.initialized && module.pid != getpid())
		module_reset();	/* a forked child: start afresh */
	if (!module.initialized) {
		pthread_mutex_unlock(&module_lock);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	return CKR_OK;
}

static void
module_leave(void)
{
	pthread_mutex_unlock(&module_lock);
}

static struct session *
session_find(CK_SESSION_HANDLE h)
{
	size_t i;

	for (i = 0; i < module.nsessions; i++)
		if (module.sessions[i].handle == h)
			return &module.sessions[i];
	return NULL;
}

/* ---------------------------------------------------------------- agent */

/* Failures after which a new connection may succeed. */
static int
agent_transport_error(int r)
{
	return r == BOTID_ERR_IO || r == BOTID_ERR_CLOSED ||
	    r == BOTID_ERR_TIMEOUT || r == BOTID_ERR_PROTOCOL;
}

/* agent_disconnect() and agent_connect(): with agent_lock held. */
static void
agent_disconnect(void)
{
	botid_close(module.client);
	module.client = NULL;
}

static int
agent_connect(void)
{
	if (module.client != NULL)
		return 0;
	return botid_connect(NULL, &module.client);
}

/* How an agent failure reads to a PKCS#11 caller (botid-pkcs11(8)). */
static CK_RV
agent_rv(int r)
{
	switch (r) {
	case 0:
		return CKR_OK;
	case BOTID_ERR_ALLOC:
		return CKR_HOST_MEMORY;
	case BOTID_ERR_DENIED:
	case BOTID_ERR_NOT_FOUND:
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	case BOTID_ERR_UNSUPPORTED:
		return CKR_MECHANISM_INVALID;
	case BOTID_ERR_INVALID:
		return CKR_DATA_INVALID;
	case BOTID_ERR_IO:
	case BOTID_ERR_CLOSED:
	case BOTID_ERR_TIMEOUT:
	case BOTID_ERR_PROTOCOL:
	case BOTID_ERR_VERSION:
	case BOTID_ERR_UNAVAILABLE:
	case BOTID_ERR_AUDIT_UNAVAILABLE:
	/* The bot's queue in the agent is full: the device is, in effect. */
	case BOTID_ERR_BUSY:
		return CKR_DEVICE_ERROR;
	}
	return CKR_FUNCTION_FAILED;
}

/* The stable index of a bot name, remembered until C_Finalize. */
static int
name_index(const char *bot, size_t *index)
{
	char **nn;
	size_t i;

	for (i = 0; i < module.nnames; i++) {
		if (strcmp(module.names[i], bot) == 0) {
			*index = i + 1;
			return 0;
		}
	}
	if (module.nnames >= MODULE_MAX_NAMES)
		return BOTID_ERR_TOO_LARGE;
	if ((nn = reallocarray(module.names, module.nnames + 1,
	    sizeof(*nn))) == NULL)
		return BOTID_ERR_ALLOC;
	module.names = nn;
	if ((nn[module.nnames] = strdup(bot)) == NULL)
		return BOTID_ERR_ALLOC;
	*index = ++module.nnames;
	return 0;
}

/* What the agent said of the caller's bots, read without the module lock. */
struct bot_data {
	char			*name;
	uint8_t			*spki;
	size_t			 spki_len;
	struct botid_blob	*certs;
	size_t			 ncerts;
};

struct bot_fetch {
	struct bot_data		*bots;
	size_t			 n;
};

static void
bot_fetch_free(struct bot_fetch *bf)
{
	size_t i;

	for (i = 0; i < bf->n; i++) {
		free(bf->bots[i].name);
		botid_free(bf->bots[i].spki);
		botid_blobs_free(bf->bots[i].certs, bf->bots[i].ncerts);
	}
	free(bf->bots);
	memset(bf, 0, sizeof(*bf));
}

/* One bot; a bot the agent no longer serves is left out. */
static int
fetch_bot(struct bot_fetch *bf, const char *bot)
{
	struct bot_data d, *nb;
	int r;

	memset(&d, 0, sizeof(d));
	if ((r = botid_pubkey(module.client, bot, &d.spki,
	    &d.spki_len)) != 0) {
		if (r == BOTID_ERR_DENIED || r == BOTID_ERR_NOT_FOUND)
			r = 0;
		goto out;
	}
	if ((r = botid_cert_chain(module.client, bot, &d.certs,
	    &d.ncerts)) != 0) {
		if (agent_transport_error(r))
			goto out;
		/* A key without a certificate is still useful. */
		d.certs = NULL;
		d.ncerts = 0;
	}
	if ((nb = reallocarray(bf->bots, bf->n + 1, sizeof(*nb))) == NULL ||
	    (d.name = strdup(bot)) == NULL) {
		if (nb != NULL)
			bf->bots = nb;
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	bf->bots = nb;
	bf->bots[bf->n++] = d;
	memset(&d, 0, sizeof(d));
	r = 0;
 out:
	botid_free(d.spki);
	botid_blobs_free(d.certs, d.ncerts);
	return r;
}

static int
fetch_once(struct bot_fetch *bf)
{
	struct botid_bot_info *bots = NULL;
	size_t nbots = 0, i;
	int r;

	bot_fetch_free(bf);
	if ((r = agent_connect()) != 0 ||
	    (r = botid_list(module.client, &bots, &nbots)) != 0)
		goto out;
	for (i = 0; i < nbots; i++)
		if ((r = fetch_bot(bf, bots[i].name)) != 0)
			goto out;
	r = 0;
 out:
	if (r != 0)
		bot_fetch_free(bf);
	botid_bot_info_free(bots, nbots);
	return r;
}

/*
 * Reads the bots from the agent, under agent_lock and not the module
 * lock. An agent that cannot be reached leaves the token empty (and the
 * next session tries again): applications that probe every module must
 * not fail because of this one.
 */
static int
agent_fetch_bots(struct bot_fetch *bf)
{
	int r;

	if (pthread_mutex_lock(&agent_lock) != 0)
		return BOTID_ERR_INTERNAL;
	if ((r = fetch_once(bf)) != 0 && agent_transport_error(r)) {
		agent_disconnect();
		r = fetch_once(bf);
	}
	if (r != 0)
		agent_disconnect();
	pthread_mutex_unlock(&agent_lock);
	return r;
}

/* Makes the token's objects from what agent_fetch_bots() got (r its result). */
static void
install_objects(const struct bot_fetch *bf, int r)
{
	size_t i, index;

	objects_clear(&module.objects);
	for (i = 0; r == 0 && i < bf->n; i++) {
		const struct bot_data *d = &bf->bots[i];

		if ((r = name_index(d->name, &index)) != 0)
			break;
		r = objects_add_bot(&module.objects, index, d->name, d->spki,
		    d->spki_len, d->ncerts > 0 ? d->certs[0].data : NULL,
		    d->ncerts > 0 ? d->certs[0].len : 0);
		if (r == BOTID_ERR_INVALID)
			r = 0;	/* a key type this module cannot show */
	}
	if (r != 0)
		objects_clear(&module.objects);
	module.loaded = r == 0;
}

/* Signs digest through the agent, reconnecting once on a lost connection. */
static int
agent_sign(const struct sign_op *op, uint32_t hash, const uint8_t *digest,
    size_t digest_len, uint8_t **sig, size_t *sig_len)
{
	enum botid_sig_format format = op->mech->key_type == CKK_EC ?
	    BOTID_FORMAT_RAW : BOTID_FORMAT_DER;
	int r, attempt;

	if (pthread_mutex_lock(&agent_lock) != 0)
		return BOTID_ERR_INTERNAL;
	for (attempt = 0; attempt < 2; attempt++) {
		if ((r = agent_connect()) == 0)
			r = botid_sign_digest(module.client, op->bot, hash,
			    op->mech->scheme, format, digest, digest_len, sig,
			    sig_len);
		if (!agent_transport_error(r))
			break;
		agent_disconnect();
	}
	pthread_mutex_unlock(&agent_lock);
	return r;
}

/* ---------------------------------------------------------------- general */

static CK_RV
pkcs11_initialize(CK_VOID_PTR init_args)
{
	CK_C_INITIALIZE_ARGS *args = init_args;
	CK_RV rv = CKR_OK;
	int given;

	if (args != NULL) {
		given = (args->CreateMutex != NULL) + (args->DestroyMutex != NULL) +
		    (args->LockMutex != NULL) + (args->UnlockMutex != NULL);
		if (args->pReserved != NULL || (given != 0 && given != 4))
			return CKR_ARGUMENTS_BAD;
		/* We lock with pthreads; we cannot use only the caller's. */
		if (given == 4 && !(args->flags & CKF_OS_LOCKING_OK))
			return CKR_CANT_LOCK;
	}
	if (pthread_once(&module_atfork_once, module_atfork_register) != 0 ||
	    module_atfork_rv != 0)
		return CKR_GENERAL_ERROR;
	if (pthread_mutex_lock(&module_lock) != 0)
		return CKR_GENERAL_ERROR;
	if (module.initialized && module.pid != getpid())
		module_reset();
	if (module.initialized) {
		rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
		goto out;
	}
	module.initialized = 1;
	module.pid = getpid();
	module.next_session = 1;
 out:
	pthread_mutex_unlock(&module_lock);
	return rv;
}

static CK_RV
pkcs11_finalize(CK_VOID_PTR reserved)
{
	CK_RV rv;

	if (reserved != NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = module_enter()) != CKR_OK)
		return rv;
	module_reset();
	module_leave();
	return CKR_OK;
}

/* Copies s into a blank-padded, unterminated PKCS#11 text field. */
static void
pad_copy(unsigned char *dst, size_t size, const char *s)
{
	size_t n = strlen(s);

	memset(dst, ' ', size);
	memcpy(dst, s, n < size ? n : size);
}

static CK_RV
pkcs11_get_info(CK_INFO_PTR info)
{
	CK_RV rv;

	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = module_enter()) != CKR_OK)
		return rv;
	memset(info, 0, sizeof(*info));
	info->cryptokiVersion.major = 2;
	info->cryptokiVersion.minor = 40;
	pad_copy(info->manufacturerID, sizeof(info->manufacturerID), "botid");
	pad_copy(info->libraryDescription, sizeof(info->libraryDescription),
	    "botid agent PKCS#11 module");
	info->libraryVersion.major = 0;
	info->libraryVersion.minor = 1;
	module_leave();
	return CKR_OK;
}

static CK_RV
pkcs11_get_slot_list(CK_BBOOL token_present, CK_SLOT_ID_PTR list,
    CK_ULONG_PTR count)
{
	CK_RV rv;

	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = module_enter()) != CKR_OK)
		return rv;
	/* One slot, whose token is always present. */
	if (list != NULL && *count < 1)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (list != NULL)
		list[0] = MODULE_SLOT_ID;
	*count = 1;
	module_leave();
	return rv;
}

static CK_RV
pkcs11_get_slot_info(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	CK_RV rv;

	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if (slot != MODULE_SLOT_ID) {
		rv = CKR_SLOT_ID_INVALID;
		goto out;
	}
	memset(info, 0, sizeof(*info));
	pad_copy(info->slotDescription, sizeof(info->slotDescription),
	    "botid agent");
	pad_copy(info->manufacturerID, sizeof(info->manufacturerID), "botid");
	info->flags = CKF_TOKEN_PRESENT;
	info->hardwareVersion.major = 0;
	info->firmwareVersion.minor = 1;
 out:
	module_leave();
	return rv;
}

static CK_RV
pkcs11_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	size_t i, rw = 0;
	CK_RV rv;

	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if (slot != MODULE_SLOT_ID) {
		rv = CKR_SLOT_ID_INVALID;
		goto out;
	}
	for (i = 0; i < module.nsessions; i++)
		if (module.sessions[i].flags & CKF_RW_SESSION)
			rw++;
	memset(info, 0, sizeof(*info));
	pad_copy(info->label, sizeof(info->label), "botid");
	pad_copy(info->manufacturerID, sizeof(info->manufacturerID), "botid");
	pad_copy(info->model, sizeof(info->model), "botid-agent");
	pad_copy(info->serialNumber, sizeof(info->serialNumber), "1");
	/* No CKF_LOGIN_REQUIRED: the agent decides from peer credentials. */
	info->flags = CKF_TOKEN_INITIALIZED;
	info->ulMaxSessionCount = MODULE_MAX_SESSIONS;
	info->ulSessionCount = module.nsessions;
	info->ulMaxRwSessionCount = MODULE_MAX_SESSIONS;
	info->ulRwSessionCount = rw;
	info->ulMaxPinLen = BOTID_MAX_PIN;
	info->ulMinPinLen = 0;
	info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
	info->firmwareVersion.minor = 1;
	pad_copy(info->utcTime, sizeof(info->utcTime), "");
 out:
	module_leave();
	return rv;
}

static CK_RV
pkcs11_get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list,
    CK_ULONG_PTR count)
{
	size_t i, n = mechanisms_count();
	CK_RV rv;

	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if (slot != MODULE_SLOT_ID)
		rv = CKR_SLOT_ID_INVALID;
	else if (list != NULL && *count < n)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (list != NULL) {
		for (i = 0; i < n; i++)
			list[i] = mechanisms_at(i)->type;
	}
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL)
		*count = n;
	module_leave();
	return rv;
}

static CK_RV
pkcs11_get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
    CK_MECHANISM_INFO_PTR info)
{
	const struct botid_p11_mechanism *m;
	CK_RV rv;

	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if (slot != MODULE_SLOT_ID) {
		rv = CKR_SLOT_ID_INVALID;
		goto out;
	}
	if ((m = mechanisms_find(type)) == NULL) {
		rv = CKR_MECHANISM_INVALID;
		goto out;
	}
	memset(info, 0, sizeof(*info));
	info->flags = CKF_SIGN;
	if (m->key_type == CKK_EC) {
		info->ulMinKeySize = 256;
		info->ulMaxKeySize = 521;
		info->flags |= CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
	} else {
		info->ulMinKeySize = 1024;
		info->ulMaxKeySize = BOTID_MAX_SIGNATURE * 8;
	}
 out:
	module_leave();
	return rv;
}

/* ---------------------------------------------------------------- sessions */

static CK_RV
pkcs11_open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app,
    CK_NOTIFY notify, CK_SESSION_HANDLE_PTR handle)
{
	struct session *ns;
	struct bot_fetch bf;
	CK_RV rv;
	int r;

	memset(&bf, 0, sizeof(bf));
	if (handle == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if (slot != MODULE_SLOT_ID) {
		rv = CKR_SLOT_ID_INVALID;
		goto out;
	}
	if (!(flags & CKF_SERIAL_SESSION)) {
		rv = CKR_SESSION_PARALLEL_NOT_SUPPORTED;
		goto out;
	}
	if (module.nsessions >= MODULE_MAX_SESSIONS) {
		rv = CKR_SESSION_COUNT;
		goto out;
	}
	/*
	 * The bots are read again whenever no session is open, so that a
	 * long-running process sees new bots and renewed certificates;
	 * handles stay the same for the same bot.
	 */
	if (module.nsessions == 0 || !module.loaded) {
		/* The agent is asked without the module lock held. */
		module_leave();
		r = agent_fetch_bots(&bf);
		if ((rv = module_enter()) != CKR_OK) {
			bot_fetch_free(&bf);
			return rv;
		}
		if (module.nsessions >= MODULE_MAX_SESSIONS) {
			rv = CKR_SESSION_COUNT;
			goto out;
		}
		install_objects(&bf, r);
	}
	if ((ns = reallocarray(module.sessions, module.nsessions + 1,
	    sizeof(*ns))) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	module.sessions = ns;
	ns = &module.sessions[module.nsessions++];
	memset(ns, 0, sizeof(*ns));
	ns->handle = module.next_session++;
	ns->flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
	*handle = ns->handle;
 out:
	module_leave();
	bot_fetch_free(&bf);
	return rv;
}

static CK_RV
pkcs11_close_session(CK_SESSION_HANDLE handle)
{
	struct session *s;
	CK_RV rv;

	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if ((s = session_find(handle)) == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	sign_op_end(&s->sign);
	find_op_end(&s->find);
	*s = module.sessions[--module.nsessions];
	if (module.nsessions == 0)
		module.logged_in = 0;
 out:
	module_leave();
	return rv;
}

static CK_RV
pkcs11_close_all_sessions(CK_SLOT_ID slot)
{
	CK_RV rv;

	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if (slot != MODULE_SLOT_ID)
		rv = CKR_SLOT_ID_INVALID;
	else
		sessions_free();
	module_leave();
	return rv;
}

static CK_RV
pkcs11_get_session_info(CK_SESSION_HANDLE handle, CK_SESSION_INFO_PTR info)
{
	struct session *s;
	int rw;
	CK_RV rv;

	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if ((s = session_find(handle)) == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	rw = (s->flags & CKF_RW_SESSION) != 0;
	memset(info, 0, sizeof(*info));
	info->slotID = MODULE_SLOT_ID;
	info->flags = s->flags;
	if (module.logged_in)
		info->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
	else
		info->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
 out:
	module_leave();
	return rv;
}

/*
 * There is no PIN: the agent trusts the socket's peer credentials. A
 * login is accepted (and the PIN ignored, never copied) so that callers
 * that always log in keep working.
 */
static CK_RV
pkcs11_login(CK_SESSION_HANDLE handle, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
    CK_ULONG pin_len)
{
	CK_RV rv;

	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if (session_find(handle) == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	else if (user != CKU_USER)
		rv = CKR_USER_TYPE_INVALID;
	else if (module.logged_in)
		rv = CKR_USER_ALREADY_LOGGED_IN;
	else
		module.logged_in = 1;
	module_leave();
	return rv;
}

static CK_RV
pkcs11_logout(CK_SESSION_HANDLE handle)
{
	CK_RV rv;

	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if (session_find(handle) == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	else if (!module.logged_in)
		rv = CKR_USER_NOT_LOGGED_IN;
	else
		module.logged_in = 0;
	module_leave();
	return rv;
}

/* ---------------------------------------------------------------- objects */

static CK_RV
pkcs11_get_attribute_value(CK_SESSION_HANDLE handle, CK_OBJECT_HANDLE object,
    CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
	const struct botid_p11_object *o;
	CK_RV rv;

	if (tmpl == NULL && count > 0)
		return CKR_ARGUMENTS_BAD;
	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if (session_find(handle) == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	else if ((o = objects_find(&module.objects, object)) == NULL)
		rv = CKR_OBJECT_HANDLE_INVALID;
	else
		rv = objects_get_attributes(o, tmpl, count);
	module_leave();
	return rv;
}

static CK_RV
pkcs11_find_objects_init(CK_SESSION_HANDLE handle, CK_ATTRIBUTE_PTR tmpl,
    CK_ULONG count)
{
	struct session *s;
	size_t i;
	CK_RV rv;

	if (tmpl == NULL && count > 0)
		return CKR_ARGUMENTS_BAD;
	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if ((s = session_find(handle)) == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	if (s->find.active) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	if (module.objects.n > 0 && (s->find.handles = calloc(module.objects.n,
	    sizeof(*s->find.handles))) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	for (i = 0; i < module.objects.n; i++)
		if (objects_match(&module.objects.list[i], tmpl, count))
			s->find.handles[s->find.n++] =
			    module.objects.list[i].handle;
	s->find.active = 1;
 out:
	module_leave();
	return rv;
}

static CK_RV
pkcs11_find_objects(CK_SESSION_HANDLE handle, CK_OBJECT_HANDLE_PTR objects,
    CK_ULONG max, CK_ULONG_PTR count)
{
	struct session *s;
	CK_RV rv;

	if (count == NULL || (objects == NULL && max > 0))
		return CKR_ARGUMENTS_BAD;
	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if ((s = session_find(handle)) == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	else if (!s->find.active)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else {
		*count = 0;
		while (*count < max && s->find.pos < s->find.n)
			objects[(*count)++] = s->find.handles[s->find.pos++];
	}
	module_leave();
	return rv;
}

static CK_RV
pkcs11_find_objects_final(CK_SESSION_HANDLE handle)
{
	struct session *s;
	CK_RV rv;

	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if ((s = session_find(handle)) == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	else if (!s->find.active)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else
		find_op_end(&s->find);
	module_leave();
	return rv;
}

/* ---------------------------------------------------------------- signing */

static const EVP_MD *
hash_md(uint32_t hash)
{
	switch (hash) {
	case BOTID_HASH_SHA256:
		return EVP_sha256();
	case BOTID_HASH_SHA384:
		return EVP_sha384();
	case BOTID_HASH_SHA512:
		return EVP_sha512();
	}
	return NULL;
}

static CK_RV
pkcs11_sign_init(CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mech,
    CK_OBJECT_HANDLE key)
{
	const struct botid_p11_mechanism *m;
	const struct botid_p11_object *o;
	struct session *s;
	struct sign_op op;
	CK_RV rv;

	if (mech == NULL)
		return CKR_ARGUMENTS_BAD;
	memset(&op, 0, sizeof(op));
	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if ((s = session_find(handle)) == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	if (s->sign.active) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	if ((m = mechanisms_find(mech->mechanism)) == NULL) {
		rv = CKR_MECHANISM_INVALID;
		goto out;
	}
	if ((o = objects_find(&module.objects, key)) == NULL) {
		rv = CKR_KEY_HANDLE_INVALID;
		goto out;
	}
	if (o->klass != CKO_PRIVATE_KEY) {
		rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
		goto out;
	}
	if (o->key_type != m->key_type) {
		rv = CKR_KEY_TYPE_INCONSISTENT;
		goto out;
	}
	if ((rv = mechanisms_check_params(m, mech, &op.hash)) != CKR_OK)
		goto out;
	op.mech = m;
	op.sig_len = o->sig_len;
	if ((op.bot = strdup(o->bot)) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if (m->hashes_data && ((op.md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(op.md, hash_md(op.hash), NULL) != 1)) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	op.active = 1;
	s->sign = op;
	memset(&op, 0, sizeof(op));
 out:
	sign_op_end(&op);
	module_leave();
	return rv;
}

/*
 * The digest and hash to send for the single-part input data: hashed
 * here, or given by the caller (CKM_ECDSA: its length picks the hash;
 * CKM_RSA_PKCS: a DigestInfo; CKM_RSA_PKCS_PSS: the parameters' hash).
 */
static CK_RV
sign_digest_of(struct sign_op *op, const uint8_t *data, size_t len,
    uint8_t *digest, size_t *digest_len, uint32_t *hash)
{
	unsigned int n = 0;

	*hash = op->hash;
	if (op->mech->hashes_data) {
		if ((len > 0 && EVP_DigestUpdate(op->md, data, len) != 1) ||
		    EVP_DigestFinal_ex(op->md, digest, &n) != 1)
			return CKR_FUNCTION_FAILED;
		*digest_len = n;
		return CKR_OK;
	}
	if (op->mech->scheme == BOTID_SCHEME_PKCS1) {
		if (mechanisms_parse_digest_info(data, len, hash, digest,
		    digest_len) != 0)
			return CKR_DATA_INVALID;
		return CKR_OK;
	}
	if (op->mech->scheme == BOTID_SCHEME_ECDSA)
		*hash = mechanisms_hash_for_length(len);
	if (*hash == 0 || len != mechanisms_hash_length(*hash))
		return CKR_DATA_LEN_RANGE;
	memcpy(digest, data, len);
	*digest_len = len;
	return CKR_OK;
}

/*
 * Ends op with a signature in out (room for op->sig_len bytes, checked by
 * the caller). RSA signatures shorter than the modulus are left-padded.
 * Called without the module lock: op was taken off its session
 * (sign_take()), and only the agent lock is held for the round trip.
 */
static CK_RV
sign_finish(struct sign_op *op, const uint8_t *data, size_t len,
    CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	uint8_t digest[BOTID_MAX_DIGEST], *sig = NULL;
	size_t digest_len = 0, sig_len = 0;
	uint32_t hash = 0;
	CK_RV rv;
	int r;

	if ((rv = sign_digest_of(op, data, len, digest, &digest_len,
	    &hash)) != CKR_OK)
		goto out;
	if ((r = agent_sign(op, hash, digest, digest_len, &sig,
	    &sig_len)) != 0) {
		rv = agent_rv(r);
		goto out;
	}
	/* The agent's answer is checked like any other input. */
	if (sig_len == 0 || sig_len > op->sig_len ||
	    (op->mech->key_type == CKK_EC && sig_len != op->sig_len)) {
		rv = CKR_DEVICE_ERROR;
		goto out;
	}
	memset(out, 0, op->sig_len - sig_len);
	memcpy(out + (op->sig_len - sig_len), sig, sig_len);
	*out_len = op->sig_len;
	rv = CKR_OK;
 out:
	OPENSSL_cleanse(digest, sizeof(digest));
	botid_free(sig);
	sign_op_end(op);
	return rv;
}

/*
 * The checks C_Sign and C_SignFinal share. Returns CKR_OK with *done = 0
 * when the caller should sign; a size query or a short buffer leaves the
 * operation active, as PKCS#11 requires.
 */
static CK_RV
sign_output_check(struct sign_op *op, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len,
    int *done)
{
	*done = 1;
	if (sig == NULL) {
		*sig_len = op->sig_len;
		return CKR_OK;
	}
	if (*sig_len < op->sig_len) {
		*sig_len = op->sig_len;
		return CKR_BUFFER_TOO_SMALL;
	}
	*done = 0;
	return CKR_OK;
}

/*
 * Takes the session's operation over for sign_finish(): the session has
 * none afterwards, as after any C_Sign or C_SignFinal that did not stop at
 * a size query.
 */
static struct sign_op
sign_take(struct session *s)
{
	struct sign_op op = s->sign;

	memset(&s->sign, 0, sizeof(s->sign));
	return op;
}

static CK_RV
pkcs11_sign(CK_SESSION_HANDLE handle, CK_BYTE_PTR data, CK_ULONG data_len,
    CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	struct session *s;
	struct sign_op op;
	int done;
	CK_RV rv;

	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if ((s = session_find(handle)) == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	if (!s->sign.active) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
		goto out;
	}
	if (sig_len == NULL || (data == NULL && data_len > 0) ||
	    s->sign.updated) {
		sign_op_end(&s->sign);
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	if ((rv = sign_output_check(&s->sign, sig, sig_len, &done)) != CKR_OK ||
	    done)
		goto out;
	op = sign_take(s);
	module_leave();
	return sign_finish(&op, data, data_len, sig, sig_len);
 out:
	module_leave();
	return rv;
}

static CK_RV
pkcs11_sign_update(CK_SESSION_HANDLE handle, CK_BYTE_PTR part,
    CK_ULONG part_len)
{
	struct session *s;
	CK_RV rv;

	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if ((s = session_find(handle)) == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	if (!s->sign.active) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
		goto out;
	}
	if (part == NULL && part_len > 0)
		rv = CKR_ARGUMENTS_BAD;
	/* CKM_ECDSA, CKM_RSA_PKCS and CKM_RSA_PKCS_PSS are single-part. */
	else if (!s->sign.mech->hashes_data)
		rv = CKR_MECHANISM_INVALID;
	else if (part_len > 0 && EVP_DigestUpdate(s->sign.md, part,
	    part_len) != 1)
		rv = CKR_FUNCTION_FAILED;
	if (rv != CKR_OK)
		sign_op_end(&s->sign);
	else
		s->sign.updated = 1;
 out:
	module_leave();
	return rv;
}

static CK_RV
pkcs11_sign_final(CK_SESSION_HANDLE handle, CK_BYTE_PTR sig,
    CK_ULONG_PTR sig_len)
{
	struct session *s;
	struct sign_op op;
	int done;
	CK_RV rv;

	if ((rv = module_enter()) != CKR_OK)
		return rv;
	if ((s = session_find(handle)) == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	if (!s->sign.active) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
		goto out;
	}
	if (sig_len == NULL) {
		sign_op_end(&s->sign);
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	if (!s->sign.mech->hashes_data) {
		sign_op_end(&s->sign);
		rv = CKR_MECHANISM_INVALID;
		goto out;
	}
	if ((rv = sign_output_check(&s->sign, sig, sig_len, &done)) != CKR_OK ||
	    done)
		goto out;
	op = sign_take(s);
	module_leave();
	return sign_finish(&op, NULL, 0, sig, sig_len);
 out:
	module_leave();
	return rv;
}

/* ---------------------------------------------------------------- the rest */

/* Everything a token that only signs through an agent does not do. */
#define NOT_SUPPORTED(name, args)			\
	static CK_RV name args				\
	{						\
		return CKR_FUNCTION_NOT_SUPPORTED;	\
	}

NOT_SUPPORTED(pkcs11_init_token, (CK_SLOT_ID a, CK_UTF8CHAR_PTR b, CK_ULONG c,
    CK_UTF8CHAR_PTR d))
NOT_SUPPORTED(pkcs11_init_pin, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b,
    CK_ULONG c))
NOT_SUPPORTED(pkcs11_set_pin, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b,
    CK_ULONG c, CK_UTF8CHAR_PTR d, CK_ULONG e))
NOT_SUPPORTED(pkcs11_get_operation_state, (CK_SESSION_HANDLE a,
    CK_BYTE_PTR b, CK_ULONG_PTR c))
NOT_SUPPORTED(pkcs11_set_operation_state, (CK_SESSION_HANDLE a,
    CK_BYTE_PTR b, CK_ULONG c, CK_OBJECT_HANDLE d, CK_OBJECT_HANDLE e))
NOT_SUPPORTED(pkcs11_create_object, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b,
    CK_ULONG c, CK_OBJECT_HANDLE_PTR d))
NOT_SUPPORTED(pkcs11_copy_object, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b,
    CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e))
NOT_SUPPORTED(pkcs11_destroy_object, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b))
NOT_SUPPORTED(pkcs11_get_object_size, (CK_SESSION_HANDLE a,
    CK_OBJECT_HANDLE b, CK_ULONG_PTR c))
NOT_SUPPORTED(pkcs11_set_attribute_value, (CK_SESSION_HANDLE a,
    CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d))
NOT_SUPPORTED(pkcs11_encrypt_init, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
    CK_OBJECT_HANDLE c))
NOT_SUPPORTED(pkcs11_encrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
    CK_BYTE_PTR d, CK_ULONG_PTR e))
NOT_SUPPORTED(pkcs11_encrypt_update, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
    CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
NOT_SUPPORTED(pkcs11_encrypt_final, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
    CK_ULONG_PTR c))
NOT_SUPPORTED(pkcs11_decrypt_init, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
    CK_OBJECT_HANDLE c))
NOT_SUPPORTED(pkcs11_decrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
    CK_BYTE_PTR d, CK_ULONG_PTR e))
NOT_SUPPORTED(pkcs11_decrypt_update, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
    CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
NOT_SUPPORTED(pkcs11_decrypt_final, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
    CK_ULONG_PTR c))
NOT_SUPPORTED(pkcs11_digest_init, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b))
NOT_SUPPORTED(pkcs11_digest, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
    CK_BYTE_PTR d, CK_ULONG_PTR e))
NOT_SUPPORTED(pkcs11_digest_update, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
    CK_ULONG c))
NOT_SUPPORTED(pkcs11_digest_key, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b))
NOT_SUPPORTED(pkcs11_digest_final, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
    CK_ULONG_PTR c))
NOT_SUPPORTED(pkcs11_sign_recover_init, (CK_SESSION_HANDLE a,
    CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c))
NOT_SUPPORTED(pkcs11_sign_recover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
    CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
NOT_SUPPORTED(pkcs11_verify_init, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
    CK_OBJECT_HANDLE c))
NOT_SUPPORTED(pkcs11_verify, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
    CK_BYTE_PTR d, CK_ULONG e))
NOT_SUPPORTED(pkcs11_verify_update, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
    CK_ULONG c))
NOT_SUPPORTED(pkcs11_verify_final, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
    CK_ULONG c))
NOT_SUPPORTED(pkcs11_verify_recover_init, (CK_SESSION_HANDLE a,
    CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c))
NOT_SUPPORTED(pkcs11_verify_recover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
    CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
NOT_SUPPORTED(pkcs11_digest_encrypt_update, (CK_SESSION_HANDLE a,
    CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
NOT_SUPPORTED(pkcs11_decrypt_digest_update, (CK_SESSION_HANDLE a,
    CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
NOT_SUPPORTED(pkcs11_sign_encrypt_update, (CK_SESSION_HANDLE a,
    CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
NOT_SUPPORTED(pkcs11_decrypt_verify_update, (CK_SESSION_HANDLE a,
    CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
NOT_SUPPORTED(pkcs11_generate_key, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
    CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e))
NOT_SUPPORTED(pkcs11_generate_key_pair, (CK_SESSION_HANDLE a,
    CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_ATTRIBUTE_PTR e,
    CK_ULONG f, CK_OBJECT_HANDLE_PTR g, CK_OBJECT_HANDLE_PTR h))
NOT_SUPPORTED(pkcs11_wrap_key, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
    CK_OBJECT_HANDLE c, CK_OBJECT_HANDLE d, CK_BYTE_PTR e, CK_ULONG_PTR f))
NOT_SUPPORTED(pkcs11_unwrap_key, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
    CK_OBJECT_HANDLE c, CK_BYTE_PTR d, CK_ULONG e, CK_ATTRIBUTE_PTR f,
    CK_ULONG g, CK_OBJECT_HANDLE_PTR h))
NOT_SUPPORTED(pkcs11_derive_key, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
    CK_OBJECT_HANDLE c, CK_ATTRIBUTE_PTR d, CK_ULONG e,
    CK_OBJECT_HANDLE_PTR f))
NOT_SUPPORTED(pkcs11_seed_random, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
    CK_ULONG c))
NOT_SUPPORTED(pkcs11_generate_random, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
    CK_ULONG c))
NOT_SUPPORTED(pkcs11_wait_for_slot_event, (CK_FLAGS a, CK_SLOT_ID_PTR b,
    CK_VOID_PTR c))

static CK_RV
pkcs11_get_function_status(CK_SESSION_HANDLE handle)
{
	return CKR_FUNCTION_NOT_PARALLEL;
}

static CK_RV
pkcs11_cancel_function(CK_SESSION_HANDLE handle)
{
	return CKR_FUNCTION_NOT_PARALLEL;
}

static CK_FUNCTION_LIST module_functions = {
	.version = { 2, 40 },
	.C_Initialize = pkcs11_initialize,
	.C_Finalize = pkcs11_finalize,
	.C_GetInfo = pkcs11_get_info,
	.C_GetFunctionList = C_GetFunctionList,
	.C_GetSlotList = pkcs11_get_slot_list,
	.C_GetSlotInfo = pkcs11_get_slot_info,
	.C_GetTokenInfo = pkcs11_get_token_info,
	.C_GetMechanismList = pkcs11_get_mechanism_list,
	.C_GetMechanismInfo = pkcs11_get_mechanism_info,
	.C_InitToken = pkcs11_init_token,
	.C_InitPIN = pkcs11_init_pin,
	.C_SetPIN = pkcs11_set_pin,
	.C_OpenSession = pkcs11_open_session,
	.C_CloseSession = pkcs11_close_session,
	.C_CloseAllSessions = pkcs11_close_all_sessions,
	.C_GetSessionInfo = pkcs11_get_session_info,
	.C_GetOperationState = pkcs11_get_operation_state,
	.C_SetOperationState = pkcs11_set_operation_state,
	.C_Login = pkcs11_login,
	.C_Logout = pkcs11_logout,
	.C_CreateObject = pkcs11_create_object,
	.C_CopyObject = pkcs11_copy_object,
	.C_DestroyObject = pkcs11_destroy_object,
	.C_GetObjectSize = pkcs11_get_object_size,
	.C_GetAttributeValue = pkcs11_get_attribute_value,
	.C_SetAttributeValue = pkcs11_set_attribute_value,
	.C_FindObjectsInit = pkcs11_find_objects_init,
	.C_FindObjects = pkcs11_find_objects,
	.C_FindObjectsFinal = pkcs11_find_objects_final,
	.C_EncryptInit = pkcs11_encrypt_init,
	.C_Encrypt = pkcs11_encrypt,
	.C_EncryptUpdate = pkcs11_encrypt_update,
	.C_EncryptFinal = pkcs11_encrypt_final,
	.C_DecryptInit = pkcs11_decrypt_init,
	.C_Decrypt = pkcs11_decrypt,
	.C_DecryptUpdate = pkcs11_decrypt_update,
	.C_DecryptFinal = pkcs11_decrypt_final,
	.C_DigestInit = pkcs11_digest_init,
	.C_Digest = pkcs11_digest,
	.C_DigestUpdate = pkcs11_digest_update,
	.C_DigestKey = pkcs11_digest_key,
	.C_DigestFinal = pkcs11_digest_final,
	.C_SignInit = pkcs11_sign_init,
	.C_Sign = pkcs11_sign,
	.C_SignUpdate = pkcs11_sign_update,
	.C_SignFinal = pkcs11_sign_final,
	.C_SignRecoverInit = pkcs11_sign_recover_init,
	.C_SignRecover = pkcs11_sign_recover,
	.C_VerifyInit = pkcs11_verify_init,
	.C_Verify = pkcs11_verify,
	.C_VerifyUpdate = pkcs11_verify_update,
	.C_VerifyFinal = pkcs11_verify_final,
	.C_VerifyRecoverInit = pkcs11_verify_recover_init,
	.C_VerifyRecover = pkcs11_verify_recover,
	.C_DigestEncryptUpdate = pkcs11_digest_encrypt_update,
	.C_DecryptDigestUpdate = pkcs11_decrypt_digest_update,
	.C_SignEncryptUpdate = pkcs11_sign_encrypt_update,
	.C_DecryptVerifyUpdate = pkcs11_decrypt_verify_update,
	.C_GenerateKey = pkcs11_generate_key,
	.C_GenerateKeyPair = pkcs11_generate_key_pair,
	.C_WrapKey = pkcs11_wrap_key,
	.C_UnwrapKey = pkcs11_unwrap_key,
	.C_DeriveKey = pkcs11_derive_key,
	.C_SeedRandom = pkcs11_seed_random,
	.C_GenerateRandom = pkcs11_generate_random,
	.C_GetFunctionStatus = pkcs11_get_function_status,
	.C_CancelFunction = pkcs11_cancel_function,
	.C_WaitForSlotEvent = pkcs11_wait_for_slot_event,
};

/* The module's only exported symbol. */
CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	*list = &module_functions;
	return CKR_OK;
}
