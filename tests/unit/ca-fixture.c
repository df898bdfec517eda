/*
 * The CA of the unit tests that call ca_api_handle() (ca-fixture.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <tss2/tss2_mu.h>

#include "lib/botid.h"
#include "lib/log.h"
#include "tests/unit/ca-fixture.h"

void
ca_fixture_public(EVP_PKEY *key, uint8_t *out, size_t *out_len)
{
	TPM2B_PUBLIC pub;
	TPMT_PUBLIC *p = &pub.publicArea;
	BIGNUM *x = NULL, *y = NULL;
	size_t off = 0;

	memset(&pub, 0, sizeof(pub));
	p->type = TPM2_ALG_ECC;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
	    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
	    TPMA_OBJECT_USERWITHAUTH;
	p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X,
	    &x), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y,
	    &y), 1);
	assert_int_equal(BN_bn2binpad(x, p->unique.ecc.x.buffer, 32), 32);
	assert_int_equal(BN_bn2binpad(y, p->unique.ecc.y.buffer, 32), 32);
	p->unique.ecc.x.size = p->unique.ecc.y.size = 32;
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, out,
	    sizeof(TPM2B_PUBLIC), &off), 0);
	*out_len = off;
	BN_free(x);
	BN_free(y);
}

void
ca_fixture_enrol(struct ca_fixture *f, struct ca_fixture_host *h)
{
	struct ca_session s;
	uint8_t pub[sizeof(TPM2B_PUBLIC)];
	size_t len = 0;

	h->key = EVP_EC_gen("P-256");
	assert_non_null(h->key);
	ca_fixture_public(h->key, pub, &len);
	memset(&s, 0, sizeof(s));
	s.ak_pub = s.hk_pub = pub;
	s.ak_len = s.hk_len = len;
	assert_int_equal(ca_db_host_add(f->db, h->id,
	    "0000000000000000000000000000000000000000000000000000000000000000",
	    &s, time(NULL)), 0);
}

static void
files_remove(const char *dir)
{
	static const char *const names[] = {
		"ca.conf", "ca.db", "ca.db-wal", "ca.db-shm", "ca.pem", "ca.key"
	};
	char path[128];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		(void)unlink(path);
	}
	(void)rmdir(dir);
}

int
ca_fixture_open(struct ca_fixture *f, const char *test, const char *extra)
{
	char path[256], err[1024];
	FILE *fp;
	int made = 0;

	memset(f, 0, sizeof(*f));
	log_init(test, BOTID_LOG_ERR, 0);
	snprintf(f->dir, sizeof(f->dir), "/tmp/botid-%s.XXXXXX", test);
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/ca.conf", f->dir);
	if ((fp = fopen(path, "w")) == NULL)
		return -1;
	fprintf(fp, "[ca]\ntrust_domain = test.botid\nlisten = 127.0.0.1:0\n"
	    "database = %s/ca.db\nca_cert = %s/ca.pem\n"
	    "ca_key = file:%s/ca.key\nek_root = %s/ca.pem\n%s", f->dir,
	    f->dir, f->dir, f->dir, extra != NULL ? extra : "");
	if (fclose(fp) != 0)
		return -1;
	if (ca_config_load(path, &f->cfg, err, sizeof(err)) != 0 ||
	    ca_db_open(f->cfg->database, &f->db, err, sizeof(err)) != 0 ||
	    ca_signer_init(f->cfg, &made, err, sizeof(err)) != 0 ||
	    ca_signer_open(f->cfg, &f->signer, err, sizeof(err)) != 0 ||
	    ca_api_init(&f->api, f->cfg, f->db, f->signer, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "%s: setup: %s\n", test, err);
		return -1;
	}
	return 0;
}

void
ca_fixture_close(struct ca_fixture *f)
{
	ca_api_free(&f->api);
	ca_signer_close(f->signer);
	ca_db_close(f->db);
	ca_config_free(f->cfg);
	files_remove(f->dir);
}

int
ca_fixture_call(struct ca_fixture *f, const char *method, const char *path,
    const char *body, json_t **answer)
{
	const char *ctype = NULL;
	char *out = NULL;
	json_error_t je;
	int status;

	status = ca_api_handle(&f->api, method, path, body, strlen(body),
	    "test", &out, &ctype);
	assert_non_null(out);
	if (answer != NULL) {
		*answer = json_loads(out, 0, &je);
		assert_non_null(*answer);
	}
	free(out);
	return status;
}
