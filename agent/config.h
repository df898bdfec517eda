/*
 * botid-agent configuration: /etc/botid/agent.conf, INI with an [agent]
 * section and one [bot NAME] section per bot (botid-agent.conf(5)).
 */
#ifndef BOTID_AGENT_CONFIG_H
#define BOTID_AGENT_CONFIG_H

#include <stddef.h>
#include <sys/types.h>

#define BOTID_MAX_ALLOW_TERMS	16u	/* terms in one allow line */

enum botid_key_type {
	BOTID_KEY_ECDSA_P256 = 1,
	BOTID_KEY_ECDSA_P384 = 2,
	BOTID_KEY_RSA_2048 = 3,
	BOTID_KEY_RSA_3072 = 4,
};

enum botid_backend_kind {
	BOTID_BACKEND_TPM = 1,
	BOTID_BACKEND_PKCS11 = 2,
};

/* One condition of an allow line. */
enum botid_allow_kind {
	BOTID_ALLOW_UID = 1,
	BOTID_ALLOW_GID = 2,
	BOTID_ALLOW_EXE = 3,
	BOTID_ALLOW_UNIT = 4,
};

struct botid_allow_term {
	enum botid_allow_kind	 kind;
	unsigned long		 id;	/* uid or gid */
	char			*text;	/* exe path or unit name */
	/*
	 * exe: the identity of the file at text when the configuration was
	 * loaded; have_file 0 (no such file then) matches nobody.
	 */
	int			 have_file;
	dev_t			 dev;
	ino_t			 ino;
};

/* An allow line: a caller matches when it satisfies every term. */
struct botid_allow_rule {
	struct botid_allow_term	*terms;
	size_t			 nterms;
	int			 line;
};

struct botid_bot_config {
	char			*name;
	enum botid_backend_kind	 backend;
	enum botid_key_type	 key_type;
	char			*module;	/* pkcs11: module path */
	char			*token_label;	/* pkcs11 */
	char			*pin_file;	/* pkcs11: file holding the user PIN */
	char			*pin_credential; /* pkcs11: systemd credential name */
	struct botid_allow_rule	*allow;		/* lines are alternatives */
	size_t			 nallow;
	char			**scopes;	/* JWT scopes the bot may ask for */
	size_t			 nscopes;
	unsigned		 max_token_ttl;	/* seconds */
	unsigned		 rotate_every;	/* seconds; 0: never by itself */
	int			 line;		/* of the [bot NAME] header */
};

struct botid_agent_config {
	int			 refs;		/* config_ref(), config_free() */
	char			*path;		/* file it was read from */
	char			*socket_path;
	char			*ssh_socket_path; /* ssh-agent protocol; NULL: off */
	mode_t			 socket_mode;
	char			*socket_group;	/* NULL: agent's own group */
	gid_t			 socket_gid;	/* socket_group resolved at load */
	char			*state_dir;
	char			*user;		/* NULL: keep the starting user */
	uid_t			 user_uid;	/* user resolved at load */
	char			*tcti;		/* NULL: tpm2-tss default */
	char			*audit_log;	/* NULL: no audit file */
	char			*event_log;	/* TCG log sent when asked */
	unsigned		 audit_checkpoint_entries; /* seal every n */
	unsigned		 audit_checkpoint_interval; /* or s seconds */
	int			 audit_syslog;	/* copy entries to syslog */
	unsigned		 max_connections;
	unsigned		 idle_timeout;	/* seconds */
	unsigned		 max_connections_per_uid; /* one uid's share */
	unsigned		 first_request_timeout; /* s to say HELLO */
	unsigned		 tpm_loaded_keys; /* bot keys kept in TPM slots */
	unsigned		 pkcs11_sessions; /* sessions (workers) per token */
	unsigned		 max_queue_wait_ms; /* BUSY past it; 0: none */
	unsigned		 renew_percent;	/* renew after this % of the life
						   left on arrival (10-90) */
	unsigned		 rotate_grace;	/* seconds an old key outlives
						   its rotation */
	struct botid_allow_rule	*admin;		/* who may ask for the inventory; */
	size_t			 nadmin;	/* none: uid 0 only */
	struct botid_bot_config	*bots;
	size_t			 nbots;
};

/*
 * Reads and validates the file at path. On failure returns BOTID_ERR_CONFIG
 * (or _IO, _ALLOC) with "PATH:LINE: message" (or "PATH: message") in err.
 * On success *cfgp is owned by the caller (config_free()).
 */
int	config_load(const char *path, struct botid_agent_config **cfgp,
	    char *err, size_t errlen);

/* Frees a configuration; accepts NULL. */
void	config_free(struct botid_agent_config *cfg);
/* Another owner for cfg: each config_free() drops one; returns cfg. */
struct botid_agent_config *config_ref(struct botid_agent_config *cfg);

/* Finds a bot by name, or NULL. */
const struct botid_bot_config *config_find_bot(
	    const struct botid_agent_config *cfg, const char *name);

/* Names used in the config file and on the wire, or NULL if out of range. */
const char *config_key_type_name(enum botid_key_type t);
const char *config_backend_name(enum botid_backend_kind k);
int	config_key_type_parse(const char *s, enum botid_key_type *t);

#endif /* BOTID_AGENT_CONFIG_H */
