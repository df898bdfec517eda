/*
 * One-line logging for the daemons: to stderr (with a timestamp) or to
 * syslog. Never pass a secret to these functions.
 */
#ifndef BOTID_LOG_H
#define BOTID_LOG_H

enum botid_log_level {
	BOTID_LOG_ERR = 0,
	BOTID_LOG_WARN = 1,
	BOTID_LOG_INFO = 2,
	BOTID_LOG_DEBUG = 3,
};

/* Sets the program name, the most verbose level shown, and syslog or stderr. */
void	log_init(const char *ident, enum botid_log_level level, int use_syslog);

void	log_msg(enum botid_log_level level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/*
 * While on (per thread), this thread's messages are logged as debug: a
 * retry that repeats the same failure says so once, not at every try.
 */
void	log_demote(int on);

#define log_err(...)	log_msg(BOTID_LOG_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(BOTID_LOG_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(BOTID_LOG_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(BOTID_LOG_DEBUG, __VA_ARGS__)

#endif /* BOTID_LOG_H */
