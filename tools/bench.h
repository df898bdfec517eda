/*
 * botid-bench's signers other than the agent: the same key type signing
 * in-process on the same backend (PKCS#11 C_Sign, ESYS TPM2_Sign), and the
 * peers the agent is compared with (ssh-agent). Each is used the same way
 * by one benchmark thread: open, sign many times, close.
 */
#ifndef BOTID_BENCH_H
#define BOTID_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* One signer kind; ctx is private to the thread that opened it. */
struct bench_signer {
	const char	*kind;		/* "pkcs11", "tpm", "ssh-agent" */
	/*
	 * Parses spec (the text after "kind:") and readies a context for one
	 * thread: module loaded, session open, key found. Prints one line
	 * on failure and returns a BOTID_ERR_* code; *ctxp is the caller's.
	 */
	int	(*open)(const char *spec, void **ctxp);
	/* One signature over a fixed SHA-256 digest; 0 or BOTID_ERR_*. */
	int	(*sign)(void *ctx);
	/* Frees ctx; accepts NULL. */
	void	(*close)(void *ctx);
	/* 1 if the device serves one connection only (the thread count is 1). */
	int	 serial;
};

extern const struct bench_signer bench_signer_pkcs11;
extern const struct bench_signer bench_signer_tpm;
extern const struct bench_signer bench_signer_ssh;

/* Monotonic time in nanoseconds. */
uint64_t bench_now_ns(void);

#endif /* BOTID_BENCH_H */
