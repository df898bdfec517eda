/*
 * botid-ca's Prometheus counters (ca-metrics.h). Labels come from fixed
 * tables, never from the request: an unknown path counts as "other", so a
 * client cannot grow the exposition.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca-metrics.h"
#include "lib/botid.h"

static const char *const endpoints[CA_METRICS_ENDPOINTS] = {
	"enrol", "activate", "nonce", "certify", "revoke", "crl", "health",
	"other",
};

static const struct {
	int		 status;
	const char	*reason;
} reasons[CA_METRICS_REASONS] = {
	{ 400, "bad_request" },
	{ 403, "forbidden" },
	{ 404, "not_found" },
	{ 405, "method_not_allowed" },
	{ 409, "already_used" },
	{ 410, "expired" },
	{ 413, "too_large" },
	{ 500, "internal" },
	{ 503, "unavailable" },
	{ 0, "other" },
};

/* Upper bounds in seconds; the last is +Inf. */
static const double bounds[CA_METRICS_BUCKETS - 1] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
};

static size_t
endpoint_index(const char *path)
{
	static const char *const paths[CA_METRICS_ENDPOINTS - 1] = {
		"/v1/enrol", "/v1/activate", "/v1/nonce", "/v1/certify",
		"/v1/revoke", "/v1/crl", "/v1/health/ready",
	};
	size_t i;

	for (i = 0; i < CA_METRICS_ENDPOINTS - 1; i++)
		if (strcmp(path, paths[i]) == 0)
			return i;
	return CA_METRICS_ENDPOINTS - 1;
}

static size_t
reason_index(int status)
{
	size_t i;

	for (i = 0; i < CA_METRICS_REASONS - 1; i++)
		if (reasons[i].status == status)
			return i;
	return CA_METRICS_REASONS - 1;
}

void
ca_metrics_request(struct ca_metrics *m, const char *path, int status,
    double seconds)
{
	size_t i, e = endpoint_index(path);

	if (status == 200 && strcmp(endpoints[e], "activate") == 0) {
		m->enrolments++;
		m->issued_host++;
	} else if (status == 200 && strcmp(endpoints[e], "certify") == 0)
		m->issued_bot++;
	else if (status >= 400)
		m->rejections[e][reason_index(status)]++;
	for (i = 0; i < CA_METRICS_BUCKETS - 1; i++)
		if (seconds <= bounds[i])
			break;
	m->latency[i]++;
	m->requests++;
	m->latency_sum += seconds;
}

void
ca_metrics_revocation(struct ca_metrics *m, int host)
{
	if (host)
		m->revoked_host++;
	else
		m->revoked_bot++;
}

void
ca_metrics_key_policy(struct ca_metrics *m, int certify)
{
	m->key_policy[certify ? 1 : 0]++;
}

int
ca_metrics_render(const struct ca_metrics *m, int db_up, char **out)
{
	unsigned long long cumulative = 0;
	size_t e, i, len = 0;
	char *text = NULL;
	FILE *f;
	int failed, r = BOTID_ERR_ALLOC;

	*out = NULL;
	if ((f = open_memstream(&text, &len)) == NULL)
		return BOTID_ERR_ALLOC;
	fprintf(f, "# HELP botid_ca_enrolments_total Hosts enrolled "
	    "(credential activation passed).\n"
	    "# TYPE botid_ca_enrolments_total counter\n"
	    "botid_ca_enrolments_total %llu\n", m->enrolments);
	fprintf(f, "# HELP botid_ca_issuances_total Certificates issued.\n"
	    "# TYPE botid_ca_issuances_total counter\n"
	    "botid_ca_issuances_total{kind=\"host\"} %llu\n"
	    "botid_ca_issuances_total{kind=\"bot\"} %llu\n", m->issued_host,
	    m->issued_bot);
	fprintf(f, "# HELP botid_ca_revocations_total Revocations a host "
	    "asked for with its host key (POST /v1/revoke).\n"
	    "# TYPE botid_ca_revocations_total counter\n"
	    "botid_ca_revocations_total{kind=\"host\"} %llu\n"
	    "botid_ca_revocations_total{kind=\"bot\"} %llu\n",
	    m->revoked_host, m->revoked_bot);
	fprintf(f, "# HELP botid_ca_rejections_total Requests refused, by "
	    "endpoint and reason.\n"
	    "# TYPE botid_ca_rejections_total counter\n");
	for (e = 0; e < CA_METRICS_ENDPOINTS; e++)
		for (i = 0; i < CA_METRICS_REASONS; i++)
			if (m->rejections[e][i] != 0)
				fprintf(f, "botid_ca_rejections_total{"
				    "endpoint=\"%s\",reason=\"%s\"} %llu\n",
				    endpoints[e], reasons[i].reason,
				    m->rejections[e][i]);
	fprintf(f, "# HELP botid_ca_request_duration_seconds Time to answer "
	    "a request, from its parsed body to its answer.\n"
	    "# TYPE botid_ca_request_duration_seconds histogram\n");
	for (i = 0; i < CA_METRICS_BUCKETS; i++) {
		cumulative += m->latency[i];
		if (i < CA_METRICS_BUCKETS - 1)
			fprintf(f, "botid_ca_request_duration_seconds_bucket"
			    "{le=\"%g\"} %llu\n", bounds[i], cumulative);
		else
			fprintf(f, "botid_ca_request_duration_seconds_bucket"
			    "{le=\"+Inf\"} %llu\n", cumulative);
	}
	fprintf(f, "botid_ca_request_duration_seconds_sum %.6f\n"
	    "botid_ca_request_duration_seconds_count %llu\n", m->latency_sum,
	    m->requests);
	fprintf(f, "# HELP botid_ca_key_policy_refusals_total Keys refused "
	    "by the key policy (ca.conf), by endpoint.\n"
	    "# TYPE botid_ca_key_policy_refusals_total counter\n"
	    "botid_ca_key_policy_refusals_total{endpoint=\"enrol\"} %llu\n"
	    "botid_ca_key_policy_refusals_total{endpoint=\"certify\"} %llu\n",
	    m->key_policy[0], m->key_policy[1]);
	fprintf(f, "# HELP botid_ca_boot_refusals_total Certify requests "
	    "refused by the boot-state (PCR) policy.\n"
	    "# TYPE botid_ca_boot_refusals_total counter\n"
	    "botid_ca_boot_refusals_total %llu\n", m->boot_refusals);
	fprintf(f, "# HELP botid_ca_nonce_rate_limited_total Nonce requests "
	    "refused (429) by the per-host nonce_rate, this replica's.\n"
	    "# TYPE botid_ca_nonce_rate_limited_total counter\n"
	    "botid_ca_nonce_rate_limited_total %llu\n",
	    m->nonce_rate_limited);
	fprintf(f, "# HELP botid_ca_database_up Whether the database "
	    "answered this scrape.\n"
	    "# TYPE botid_ca_database_up gauge\n"
	    "botid_ca_database_up %d\n", db_up);
	failed = ferror(f);
	if (fclose(f) != 0)
		failed = 1;
	if (!failed && text != NULL) {
		*out = text;
		text = NULL;
		r = 0;
	}
	free(text);
	return r;
}

/* Appends printf-formatted text to *text; false without memory. */
static int __attribute__((format(printf, 2, 3)))
append(char **text, const char *fmt, ...)
{
	char *more = NULL, *n = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&more, fmt, ap);
	va_end(ap);
	if (r == -1)
		return 0;
	r = asprintf(&n, "%s%s", *text, more);
	free(more);
	if (r == -1)
		return 0;
	free(*text);
	*text = n;
	return 1;
}

int
ca_metrics_anchors(char **text, const struct ca_metrics_anchor *a, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	if (!append(text, "# HELP botid_ca_audit_anchor_number The number of "
	    "the newest audit checkpoint each host anchored.\n"
	    "# TYPE botid_ca_audit_anchor_number gauge\n"))
		return BOTID_ERR_ALLOC;
	for (i = 0; i < n; i++)
		if (!append(text, "botid_ca_audit_anchor_number{host=\"%s\"} "
		    "%llu\n", a[i].host, a[i].number))
			return BOTID_ERR_ALLOC;
	if (!append(text, "# HELP botid_ca_audit_anchor_age_seconds Seconds "
	    "since each host's newest audit checkpoint reached the CA.\n"
	    "# TYPE botid_ca_audit_anchor_age_seconds gauge\n"))
		return BOTID_ERR_ALLOC;
	for (i = 0; i < n; i++)
		if (!append(text, "botid_ca_audit_anchor_age_seconds"
		    "{host=\"%s\"} %lld\n", a[i].host, a[i].age))
			return BOTID_ERR_ALLOC;
	return 0;
}

int
ca_metrics_boot_groups(char **text, const char *const *names,
    const unsigned long long *counts, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	if (!append(text, "# HELP botid_ca_boot_refusals_by_group_total "
	    "Certify requests refused by the boot-state (PCR) policy, by the "
	    "host group whose policy refused them.\n"
	    "# TYPE botid_ca_boot_refusals_by_group_total counter\n"))
		return BOTID_ERR_ALLOC;
	for (i = 0; i < n; i++)
		if (!append(text, "botid_ca_boot_refusals_by_group_total"
		    "{group=\"%s\"} %llu\n", names[i], counts[i]))
			return BOTID_ERR_ALLOC;
	return 0;
}
