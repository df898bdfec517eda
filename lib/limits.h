/*
 * Every limit botid enforces on untrusted input, in one place.
 */
#ifndef BOTID_LIMITS_H
#define BOTID_LIMITS_H

#define BOTID_PROTOCOL_VERSION	1u
#define BOTID_MAX_FRAME		(64u * 1024u)	/* body bytes after the length */
#define BOTID_MAX_FIELDS	64u		/* fields in one frame */
#define BOTID_MAX_BOT_NAME	64u		/* bytes in a bot name */
/*
 * A key's name: its bot's, with "~GEN" after a rotation (GEN < 2^32),
 * then "+jwt" for the bot's token key (lib/grant.h).
 */
#define BOTID_MAX_KEY_NAME	(BOTID_MAX_BOT_NAME + 15u)
/*
 * A bot's token key is named after its signing key with this suffix
 * ("BOT+jwt", "BOT~3+jwt"); the host key vouches for a PKCS#11 token key
 * under "BOT+jwt". Bot names cannot contain '+'.
 */
#define BOTID_TOKEN_KEY_SUFFIX	"+jwt"
#define BOTID_MAX_BOTS		4096u		/* bots in one configuration */
#define BOTID_MAX_ALLOW		64u		/* allow lines per bot */
#define BOTID_MAX_CONNECTIONS	65536u		/* highest max_connections allowed */
#define BOTID_DEFAULT_CONNECTIONS 1024u		/* max_connections by default */
/* max_connections_per_uid by default: one uid cannot take them all. */
#define BOTID_DEFAULT_CONNECTIONS_PER_UID 256u
/*
 * Descriptors one agent connection may hold: its socket, the pidfd of its
 * cached sender and that of the sender of a frame still being read. The
 * agent serves no more connections than its descriptor limit leaves room
 * for after BOTID_AGENT_FD_RESERVE (TPM, tokens, CA, logs, state files).
 */
#define BOTID_AGENT_FDS_PER_CONN 3u
#define BOTID_AGENT_FD_RESERVE	64u
#define BOTID_MAX_INFLIGHT	32u		/* requests queued per connection */
#define BOTID_MAX_OUTBUF	(256u * 1024u)	/* unsent reply bytes per connection */
#define BOTID_MAX_SIGNATURE	512u		/* RSA-4096 fits */
#define BOTID_MAX_DIGEST	64u		/* SHA-512 */
#define BOTID_NONCE_LEN		32u		/* bytes in a botid-ca nonce */
#define BOTID_MAX_PUBKEY	1024u		/* DER SubjectPublicKeyInfo */
#define BOTID_MAX_PATH		4096u
#define BOTID_MAX_PIN		256u
#define BOTID_MAX_CONFIG_FILE	(1024u * 1024u)
#define BOTID_IDLE_TIMEOUT_S	300u		/* default idle connection timeout */
#define BOTID_FRAME_TIMEOUT_S	10u		/* a started frame must finish by then */
/* first_request_timeout: by default, and the highest allowed. */
#define BOTID_FIRST_REQUEST_TIMEOUT_S 5u
#define BOTID_MAX_FIRST_REQUEST_S 300u
#define BOTID_MAX_SCOPES	32u		/* scopes per bot and per token */
#define BOTID_MAX_SCOPE		64u		/* bytes in one scope */
#define BOTID_MAX_AUDIENCE	256u		/* bytes in a JWT audience */
#define BOTID_MAX_TOKEN		(16u * 1024u)	/* bytes in a JWT or JWS */
#define BOTID_MAX_ATTESTATION_KIND 16u	/* bytes in "tpm", "pkcs11"... */
#define BOTID_MAX_ISSUER	256u		/* bytes in a token issuer (iss) */
/* bytes in a botid-ca host group's name (inih keeps 49 of a section's) */
#define BOTID_MAX_GROUP_NAME	32u
#define BOTID_MAX_JWKS		(4u * 1024u * 1024u) /* bytes in a JWK Set */
#define BOTID_MAX_TOKEN_TTL	86400u		/* highest max_token_ttl */
#define BOTID_DEFAULT_TOKEN_TTL	300u		/* max_token_ttl by default */
#define BOTID_MAX_CHAIN		8u		/* certificates in an x5c chain */
#define BOTID_MAX_AUDIT_LINE	(64u * 1024u)	/* bytes in one audit log line */
#define BOTID_MAX_AUDIT_UNSEALED (1024u * 1024u) /* entries between seals */
/* Callers x ops x bots x results counted at once in aggregated audit lines. */
#define BOTID_AUDIT_AGGREGATE_SLOTS 64u
/*
 * Op x result pairs counted apart when every slot above holds a count the
 * log could not take (the disk full); the agent names 16 ops and 3
 * results, and the last of these counts anything beyond.
 */
#define BOTID_AUDIT_OVERFLOW_SLOTS 64u
#define BOTID_AUDIT_MAX_DETAIL	256u		/* detail an aggregate keeps */
/* A refusal repeated by a flood is logged at most this often, with a count. */
#define BOTID_LOG_EVERY_S	1u
#define BOTID_MAX_STATE_DEPTH	16u		/* directory levels under state_dir */
#define BOTID_MAX_AUDIT_FAILURES 64u	/* failures verify reports one by one */
#define BOTID_MAX_ANCHOR_QUEUE 4096u	/* checkpoints waiting for the CA */
/* Hosts botid-ca tracks for its nonce rate at once (ca-ratelimit.c). */
#define BOTID_CA_RATE_HOSTS	65536u

/*
 * A TCG event log botid-ca replays (attest/eventlog.c): its bytes (base64
 * of it must fit in a certify body, CA_BODY_MAX), records, and the bytes
 * of one event's data.
 */
#define BOTID_MAX_EVENTLOG	(40u * 1024u)
#define BOTID_MAX_EVENTLOG_EVENTS 2048u
#define BOTID_MAX_EVENTLOG_EVENT (16u * 1024u)
#define BOTID_MAX_EVENTLOG_ALGS	8u	/* digests in one record */

/* ssh-agent protocol (agent/ssh-agent.c): bytes in one field of a request. */
#define BOTID_SSH_MAX_KEY_BLOB	2048u		/* a key blob (RSA-8192 fits) */
#define BOTID_SSH_MAX_SIGN_DATA	(32u * 1024u)	/* data in SIGN_REQUEST */
#define BOTID_SSH_MAX_EXTENSION	64u		/* an extension's name */
#define BOTID_SSH_MAX_SESSION_ID 64u		/* SHA-512 exchange hash */
/*
 * botid-ca's KRL (ca/ca-krl.c, GET /v1/ssh/krl): its bytes. sshd reads the
 * whole file at each login; past this the CA refuses to make one rather
 * than serve a list missing revocations.
 */
#define BOTID_MAX_KRL		(8u * 1024u * 1024u)

/*
 * max_queue_wait (agent/pool.c): its default and highest value in
 * milliseconds, and the highest retry hint a BUSY reply gives.
 */
/* Under libbotid's 60 s reply timeout. */
#define BOTID_DEFAULT_QUEUE_WAIT_MS 30000u
#define BOTID_MAX_QUEUE_WAIT_MS	3600000u
#define BOTID_MAX_RETRY_MS	60000u
/*
 * The event loop signs in its own thread only with a device whose recent
 * operations took at most this long: a slow token never stalls the loop.
 */
#define BOTID_INLINE_MAX_US	500u
/*
 * Jobs a bot may have in one round-robin turn while its key stays loaded
 * (a TPM's object slot): each saves a key swap, and a bot asking once
 * waits for at most this many jobs of every other bot.
 */
#define BOTID_POOL_BATCH	2u

#endif /* BOTID_LIMITS_H */
