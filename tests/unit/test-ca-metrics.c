/*
 * Unit tests for ca/ca-metrics.c: what each request counts as, labels
 * only from the fixed tables (an unknown path is "other"), cumulative
 * histogram buckets, the exposition's shape, and boot-state refusals by
 * host group.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ca/ca-metrics.h"

/* Whether text holds line as a whole line. */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') &&
		    (p[n] == '\n' || p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

static void
test_empty(void **state)
{
	struct ca_metrics m;
	char *text = NULL;

	(void)state;
	memset(&m, 0, sizeof(m));
	assert_int_equal(ca_metrics_render(&m, 0, &text), 0);
	assert_true(has_line(text, "botid_ca_enrolments_total 0"));
	assert_true(has_line(text, "botid_ca_issuances_total{kind=\"bot\"} 0"));
	assert_true(has_line(text,
	    "botid_ca_request_duration_seconds_bucket{le=\"+Inf\"} 0"));
	assert_true(has_line(text, "botid_ca_database_up 0"));
	assert_null(strstr(text, "botid_ca_rejections_total{"));
	assert_true(has_line(text,
	    "botid_ca_revocations_total{kind=\"host\"} 0"));
	assert_true(has_line(text,
	    "botid_ca_revocations_total{kind=\"bot\"} 0"));
	assert_int_equal(text[strlen(text) - 1], '\n');
	free(text);
}

static void
test_counts(void **state)
{
	struct ca_metrics m;
	char *text = NULL;

	(void)state;
	memset(&m, 0, sizeof(m));
	ca_metrics_request(&m, "/v1/activate", 200, 0.0005);
	ca_metrics_request(&m, "/v1/certify", 200, 0.003);
	ca_metrics_request(&m, "/v1/certify", 200, 0.003);
	ca_metrics_request(&m, "/v1/certify", 409, 0.002);
	ca_metrics_request(&m, "/v1/enrol", 403, 0.2);
	ca_metrics_request(&m, "/v1/enrol", 200, 0.01);
	ca_metrics_request(&m, "/no\"such{path}", 404, 30);
	ca_metrics_request(&m, "/v1/nonce", 418, 0.001);
	ca_metrics_revocation(&m, 0);
	ca_metrics_revocation(&m, 0);
	ca_metrics_revocation(&m, 1);
	assert_int_equal(ca_metrics_render(&m, 1, &text), 0);
	assert_true(has_line(text,
	    "botid_ca_revocations_total{kind=\"host\"} 1"));
	assert_true(has_line(text,
	    "botid_ca_revocations_total{kind=\"bot\"} 2"));
	assert_true(has_line(text, "botid_ca_enrolments_total 1"));
	assert_true(has_line(text, "botid_ca_issuances_total{kind=\"host\"} 1"));
	assert_true(has_line(text, "botid_ca_issuances_total{kind=\"bot\"} 2"));
	assert_true(has_line(text, "botid_ca_rejections_total{endpoint="
	    "\"certify\",reason=\"already_used\"} 1"));
	assert_true(has_line(text, "botid_ca_rejections_total{endpoint="
	    "\"enrol\",reason=\"forbidden\"} 1"));
	assert_true(has_line(text, "botid_ca_rejections_total{endpoint="
	    "\"other\",reason=\"not_found\"} 1"));
	assert_true(has_line(text, "botid_ca_rejections_total{endpoint="
	    "\"nonce\",reason=\"other\"} 1"));
	assert_null(strstr(text, "such"));
	/* Cumulative: 0.0005 | 0.001 | 0.002 | 0.003 x2 | 0.01 | 0.2 | 30. */
	assert_true(has_line(text,
	    "botid_ca_request_duration_seconds_bucket{le=\"0.001\"} 2"));
	assert_true(has_line(text,
	    "botid_ca_request_duration_seconds_bucket{le=\"0.0025\"} 3"));
	assert_true(has_line(text,
	    "botid_ca_request_duration_seconds_bucket{le=\"0.005\"} 5"));
	assert_true(has_line(text,
	    "botid_ca_request_duration_seconds_bucket{le=\"0.01\"} 6"));
	assert_true(has_line(text,
	    "botid_ca_request_duration_seconds_bucket{le=\"0.25\"} 7"));
	assert_true(has_line(text,
	    "botid_ca_request_duration_seconds_bucket{le=\"2.5\"} 7"));
	assert_true(has_line(text,
	    "botid_ca_request_duration_seconds_bucket{le=\"+Inf\"} 8"));
	assert_true(has_line(text, "botid_ca_request_duration_seconds_count 8"));
	assert_true(has_line(text, "botid_ca_database_up 1"));
	free(text);
}

/* Refusals by host group: one series per group, the default first. */
static void
test_boot_groups(void **state)
{
	const char *names[] = { "default", "strict", "lab" };
	const unsigned long long counts[] = { 0, 3, 1 };
	char *text;

	(void)state;
	assert_non_null(text = strdup("x 1\n"));
	assert_int_equal(ca_metrics_boot_groups(&text, names, counts, 0), 0);
	assert_string_equal(text, "x 1\n");
	assert_int_equal(ca_metrics_boot_groups(&text, names, counts, 3), 0);
	assert_true(has_line(text, "x 1"));
	assert_true(has_line(text,
	    "# TYPE botid_ca_boot_refusals_by_group_total counter"));
	assert_true(has_line(text,
	    "botid_ca_boot_refusals_by_group_total{group=\"default\"} 0"));
	assert_true(has_line(text,
	    "botid_ca_boot_refusals_by_group_total{group=\"strict\"} 3"));
	assert_true(has_line(text,
	    "botid_ca_boot_refusals_by_group_total{group=\"lab\"} 1"));
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_boot_groups),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
