/*
 * botid-ca configuration: /etc/botid/ca.conf, INI with one [ca] section
 * (botid-ca(8) lists every key).
 */
#ifndef BOTID_ATTEST_CA_CONFIG_H
#define BOTID_ATTEST_CA_CONFIG_H

#include <stddef.h>

#include "ca/ca-pcr.h"

#define CA_MAX_LIST	32	/* ek_root and allow_ek lines */
#define CA_MAX_GROUPS	64	/* [group NAME] sections */

/*
 * A host group (a [group NAME] section): its own boot-state policy for the
 * hosts enrolled with its join tokens or moved into it (botid-ca(8)).
 */
struct ca_group {
	char			*name;
	struct ca_pcr_policy	 pcr;
	int			 has_policy;	/* pcr_policy was given */
};

struct ca_config {
	char		*path;
	char		*trust_domain;
	char		*listen_host;
	unsigned	 listen_port;	/* 0: any free port (see --port-file) */
	char		*database;
	char		*ca_cert;	/* PEM */
	char		*ca_key;	/* file:PATH or pkcs11 */
	/*
	 * The TLS server key and its self-signed certificate (default
	 * tls.key and tls.pem next to ca_cert). Without the key file (a CA
	 * from before they existed) the CA key issues the TLS certificate.
	 */
	char		*tls_key;	/* PEM private key */
	char		*tls_cert;	/* PEM certificate of tls_key */
	int		 tls_key_set;	/* tls_key named in ca.conf */
	char		*pkcs11_module;	/* ca_key = pkcs11 */
	char		*pkcs11_token;
	char		*pkcs11_key_label;
	char		*pkcs11_pin_file;
	char		*ek_roots[CA_MAX_LIST];
	size_t		 nek_roots;
	char		*allow_ek[CA_MAX_LIST];	/* lowercase hex SHA-256 */
	size_t		 nallow_ek;
	long		 bot_lifetime;		/* seconds */
	long		 host_lifetime;
	long		 session_lifetime;
	long		 nonce_lifetime;
	char		*ssh_ca_key;	/* SSH CA key (PEM); NULL: no SSH */
	/*
	 * Token keys (doc/credentials.md): the iss every token carries
	 * (default spiffe://TRUST_DOMAIN), and the longest token lifetime
	 * the CA grants whatever the host asks.
	 */
	char		*issuer;
	char		*public_url;	/* NULL: https://LISTEN:PORT */
	long		 token_max_ttl;		/* seconds */
	long		 audit_anchor_history;	/* anchors kept per host */
	unsigned	 nonce_max;	/* unused nonces a host may hold */
	int		 database_sync_normal;	/* serve: no fsync */
	unsigned	 nonce_rate;	/* nonces a host gets a minute */
	unsigned	 nonce_burst;	/* ... at once, after a pause */
	long		 cert_retention;	/* kept after expiry, seconds */
	long		 purge_interval;	/* seconds; 0: never */
	unsigned	 key_rsa_min_bits;
	unsigned	 key_ecc_curves;	/* CA_CURVE_* bits */
	int		 ek_purpose_check;	/* TCG EK EKU where present */
	/* HTTP limits (ca-http.c) */
	long		 max_connections;	/* also capped by RLIMIT_NOFILE */
	long		 max_connections_per_address;
	long		 request_timeout;	/* seconds for a whole request */
	struct ca_pcr_policy pcr;		/* boot-state policy */
	struct ca_group	*groups;		/* [group NAME] sections */
	size_t		 ngroups;
};

/* key_ecc_curves bits. */
#define CA_CURVE_P256	0x1u
#define CA_CURVE_P384	0x2u
#define CA_CURVE_P521	0x4u

/*
 * Reads and validates path. On failure returns BOTID_ERR_CONFIG (or _IO,
 * _ALLOC) with "PATH:LINE: message" in err; *cp is owned by the caller.
 */
int	ca_config_load(const char *path, struct ca_config **cp, char *err,
	    size_t errlen);
void	ca_config_free(struct ca_config *c);

/*
 * The boot-state policy of hosts in group: the top-level one for NULL (no
 * group), else that [group] section's; NULL when ca.conf has no such
 * group (its hosts are refused: fail closed).
 */
const struct ca_pcr_policy *ca_config_pcr(const struct ca_config *c,
	    const char *group);

/* Whether some policy, the default or a group's, asks for PCR quotes. */
int	ca_config_pcr_any(const struct ca_config *c);

/*
 * Whether name can name a group: 1 to BOTID_MAX_GROUP_NAME letters,
 * digits, '.', '-' or '_', and not "default" (the top-level policy).
 */
int	ca_group_name_valid(const char *name);

/*
 * Parses a duration in seconds, with an optional s, m, h or d suffix,
 * from min to max seconds. Errors: BOTID_ERR_INVALID.
 */
int	ca_duration_parse(const char *s, long min, long max, long *out);

#endif /* BOTID_ATTEST_CA_CONFIG_H */
