/*
 * Every limit botid enforces on untrusted input, in one place.
 */
#ifndef BOTID_LIMITS_H
#define BOTID_LIMITS_H

#define BOTID_PROTOCOL_VERSION	1u
#define BOTID_MAX_FRAME		(64u * 1024u)	/* body bytes after the length */
#define BOTID_MAX_FIELDS	64u		/* fields in one frame */
#define BOTID_MAX_BOT_NAME	64u		/* bytes in a bot name */
/* A key's name: its bot's, with "~GEN" after a rotation (GEN < 2^32). */
#define BOTID_MAX_KEY_NAME	(BOTID_MAX_BOT_NAME + 11u)
#define BOTID_MAX_BOTS		4096u		/* bots in one configuration */
#define BOTID_MAX_ALLOW		64u		/* allow lines per bot */
#define BOTID_MAX_CONNECTIONS	65536u		/* highest max_connections allowed */
#define BOTID_DEFAULT_CONNECTIONS 1024u		/* max_connections by default */
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
#define BOTID_MAX_SCOPES	32u		/* scopes per bot and per token */
#define BOTID_MAX_SCOPE		64u		/* bytes in one scope */
#define BOTID_MAX_AUDIENCE	256u		/* bytes in a JWT audience */
#define BOTID_MAX_TOKEN		(16u * 1024u)	/* bytes in a JWT or JWS */
#define BOTID_MAX_TOKEN_TTL	86400u		/* highest max_token_ttl */
#define BOTID_DEFAULT_TOKEN_TTL	300u		/* max_token_ttl by default */
#define BOTID_MAX_CHAIN		8u		/* certificates in an x5c chain */
#define BOTID_MAX_AUDIT_LINE	(64u * 1024u)	/* bytes in one audit log line */
#define BOTID_MAX_AUDIT_UNSEALED (1024u * 1024u) /* entries between seals */

#endif /* BOTID_LIMITS_H */
