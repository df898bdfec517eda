/*
 * The token's objects: for each bot the agent lets the caller use, a
 * private key, its public key and, once the agent has one, the leaf
 * certificate, each a list of attributes built from DER the agent sent
 * (and which is parsed with OpenSSL, never trusted).
 */
#ifndef BOTID_PKCS11_OBJECTS_H
#define BOTID_PKCS11_OBJECTS_H

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

struct botid_p11_attr {
	CK_ATTRIBUTE_TYPE	 type;
	uint8_t			*data;
	size_t			 len;
	int			 sensitive;	/* exists but is never revealed */
};

struct botid_p11_object {
	CK_OBJECT_HANDLE	 handle;
	CK_OBJECT_CLASS		 klass;
	CK_KEY_TYPE		 key_type;	/* CKK_EC/CKK_RSA for keys */
	char			*bot;
	size_t			 sig_len;	/* bytes of a signature */
	struct botid_p11_attr	*attrs;
	size_t			 nattrs;
};

struct botid_p11_objects {
	struct botid_p11_object	*list;
	size_t			 n;
};

/* Handles of a bot's objects: its stable index times this, plus 1..3. */
#define OBJECTS_HANDLES_PER_BOT	4u

/*
 * Adds the objects of one bot: a private and a public key from its DER
 * SubjectPublicKeyInfo spki, and a certificate object when cert (the DER
 * leaf) is non-NULL, parses, and certifies that same key. Handles are
 * index * OBJECTS_HANDLES_PER_BOT + 1, 2, 3. Errors: BOTID_ERR_INVALID
 * (the public key is malformed or of an unsupported type; nothing added),
 * BOTID_ERR_ALLOC. A certificate that does not parse or does not match the
 * key is left out without error.
 */
int	objects_add_bot(struct botid_p11_objects *objs, size_t index,
	    const char *bot, const uint8_t *spki, size_t spki_len,
	    const uint8_t *cert, size_t cert_len);

/* Frees every object; objs is empty afterwards. Accepts NULL. */
void	objects_clear(struct botid_p11_objects *objs);

/* The object with handle h, or NULL. */
const struct botid_p11_object *objects_find(const struct botid_p11_objects *objs,
	    CK_OBJECT_HANDLE h);

/*
 * Whether o has every attribute of the template with exactly that value.
 * A sensitive attribute never matches.
 */
int	objects_match(const struct botid_p11_object *o,
	    const CK_ATTRIBUTE *tmpl, CK_ULONG n);

/*
 * C_GetAttributeValue for o: fills every entry it can and returns CKR_OK,
 * or CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID or
 * CKR_BUFFER_TOO_SMALL for the entries it could not fill (their
 * ulValueLen is CK_UNAVAILABLE_INFORMATION).
 */
CK_RV	objects_get_attributes(const struct botid_p11_object *o,
	    CK_ATTRIBUTE *tmpl, CK_ULONG n);

#endif /* BOTID_PKCS11_OBJECTS_H */
