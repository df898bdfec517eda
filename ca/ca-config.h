/*
 * botid-ca configuration: /etc/botid/ca.conf, INI with one [ca] section
 * (botid-ca(8) lists every key).
 */
#ifndef BOTID_ATTEST_CA_CONFIG_H
#define BOTID_ATTEST_CA_CONFIG_H

#include <stddef.h>

#define CA_MAX_LIST	32	/* ek_root and allow_ek lines */

struct ca_config {
	char		*path;
	char		*trust_domain;
	char		*listen_host;
	unsigned	 listen_port;	/* 0: any free port (see --port-file) */
	char		*database;
	char		*ca_cert;	/* PEM */
	char		*ca_key;	/* file:PATH or pkcs11 */
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
	/*
	 * Token keys (doc/credentials.md): the iss every token carries
	 * (default spiffe://TRUST_DOMAIN), and the longest token lifetime
	 * the CA grants whatever the host asks.
	 */
	char		*issuer;
	char		*public_url;	/* NULL: https://LISTEN:PORT */
	long		 token_max_ttl;		/* seconds */
	char		*ssh_ca_key;	/* SSH CA key (PEM); NULL: no SSH */
};

/*
 * Reads and validates path. On failure returns BOTID_ERR_CONFIG (or _IO,
 * _ALLOC) with "PATH:LINE: message" in err; *cp is owned by the caller.
 */
int	ca_config_load(const char *path, struct ca_config **cp, char *err,
	    size_t errlen);
void	ca_config_free(struct ca_config *c);

/*
 * Parses a duration in seconds, with an optional s, m, h or d suffix,
 * from min to max seconds. Errors: BOTID_ERR_INVALID.
 */
int	ca_duration_parse(const char *s, long min, long max, long *out);

#endif /* BOTID_ATTEST_CA_CONFIG_H */
