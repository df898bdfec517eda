/*
 * botid-ca's counters for GET /metrics (Prometheus text format 0.0.4):
 * enrolments, issuances, revocations, rejections by endpoint and reason,
 * and a request latency histogram. One replica's own counts; kept in memory only.
 */
#ifndef BOTID_ATTEST_CA_METRICS_H
#define BOTID_ATTEST_CA_METRICS_H

#include <stddef.h>

#define CA_METRICS_ENDPOINTS	8	/* enrol ... other */
#define CA_METRICS_REASONS	10	/* bad_request ... other */
#define CA_METRICS_BUCKETS	12	/* latency bucket bounds */
/* The top-level boot-state policy and each host group's (CA_MAX_GROUPS). */
#define CA_METRICS_GROUPS	65

struct ca_metrics {
	unsigned long long	enrolments;
	unsigned long long	issued_host;
	unsigned long long	issued_bot;
	unsigned long long	revoked_host;
	unsigned long long	revoked_bot;
	unsigned long long	rejections[CA_METRICS_ENDPOINTS]
				    [CA_METRICS_REASONS];
	unsigned long long	latency[CA_METRICS_BUCKETS]; /* per bucket */
	unsigned long long	requests;
	double			latency_sum;
	unsigned long long	key_policy[2];	/* refusals: enrol, certify */
	unsigned long long	boot_refusals;	/* PCR policy said no */
	/* Of those, by policy: [0] the top-level one, [1 + i] group i's. */
	unsigned long long	boot_refusals_group[CA_METRICS_GROUPS];
	unsigned long long	nonce_rate_limited; /* 429 by nonce_rate */
};

/*
 * Counts one answered request: path and HTTP status, and how long it took.
 * A 200 from /v1/activate is an enrolment (and a host certificate), from
 * /v1/certify a bot certificate; 4xx and 5xx are rejections.
 */
void	ca_metrics_request(struct ca_metrics *m, const char *path, int status,
	    double seconds);

/*
 * Counts one revocation a host asked for (POST /v1/revoke): of the host
 * itself (with its certificates) when host is set, else of one
 * certificate by serial. Idempotent repeats are not counted.
 */
void	ca_metrics_revocation(struct ca_metrics *m, int host);

/* A key refused by the key policy, at enrolment or at certify. */
void	ca_metrics_key_policy(struct ca_metrics *m, int certify);

/*
 * The exposition text, with db_up (1 or 0) as botid_ca_database_up.
 * *out is malloc'd and the caller's. Errors: BOTID_ERR_ALLOC.
 */
int	ca_metrics_render(const struct ca_metrics *m, int db_up, char **out);

/* One host's newest audit anchor, for /metrics. */
struct ca_metrics_anchor {
	char			host[17];
	unsigned long long	number;
	long long		age;	/* seconds since the CA received it */
};

/*
 * Appends to *text (malloc'd, replaced) the n hosts' audit anchor gauges
 * (botid_ca_audit_anchor_number, _age_seconds), each family with its HELP
 * and TYPE lines. Errors: BOTID_ERR_ALLOC.
 */
int	ca_metrics_anchors(char **text, const struct ca_metrics_anchor *a,
	    size_t n);

/*
 * Appends to *text (malloc'd, replaced) botid_ca_boot_refusals_by_group_total
 * with its HELP and TYPE lines: one series per name (n of them, the first
 * "default"), counts[i] for names[i]. Nothing for n = 0.
 * Errors: BOTID_ERR_ALLOC.
 */
int	ca_metrics_boot_groups(char **text, const char *const *names,
	    const unsigned long long *counts, size_t n);

#endif /* BOTID_ATTEST_CA_METRICS_H */
