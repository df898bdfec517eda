#!/usr/bin/python3
"""Independent PKCS#11 checks for the tests, through PyKCS11 rather than
libp11 (the agent's own path to the token).

  p11-private.py read MODULE TOKEN PIN_FILE LABEL
      tries to read the private value of the key labelled LABEL;
      exit 0 if it could, 2 if the token refused, 1 on any other error.
  p11-private.py make-extractable MODULE TOKEN PIN_FILE LABEL
      generates an ECDSA P-256 key pair labelled LABEL whose private
      half is neither sensitive nor non-extractable (a control key).
"""
import sys

import PyKCS11

# The private value: CKA_VALUE for EC keys, the exponent for RSA keys.
SECRET_ATTRS = (PyKCS11.CKA_VALUE, PyKCS11.CKA_PRIVATE_EXPONENT)
P256_OID = bytes.fromhex("06082a8648ce3d030107")


def session(module, token, pin_file):
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    for slot in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(slot).label.strip() == token:
            ses = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION |
                                  PyKCS11.CKF_RW_SESSION)
            with open(pin_file) as f:
                ses.login(f.read().strip())
            return lib, ses
    raise SystemExit("p11-private: no token labelled %s" % token)


def read_private(ses, label):
    keys = ses.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
                            (PyKCS11.CKA_LABEL, label)])
    if len(keys) != 1:
        print("p11-private: %d private keys labelled %s" % (len(keys), label),
              file=sys.stderr)
        return 1
    for attr in SECRET_ATTRS:
        try:
            # PyKCS11 maps CKR_ATTRIBUTE_SENSITIVE to None.
            value = ses.getAttributeValue(keys[0], [attr], allAsBinary=True)
        except PyKCS11.PyKCS11Error as e:
            print("p11-private: %s: %s" % (label, e), file=sys.stderr)
            continue
        if value[0] is not None and len(value[0]) > 0:
            print("%s: read %d bytes of attribute 0x%x" %
                  (label, len(value[0]), attr))
            return 0
    print("%s: private value refused by the token" % label)
    return 2


def make_extractable(ses, label):
    pub = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY),
           (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
           (PyKCS11.CKA_TOKEN, PyKCS11.CK_TRUE),
           (PyKCS11.CKA_VERIFY, PyKCS11.CK_TRUE),
           (PyKCS11.CKA_EC_PARAMS, P256_OID),
           (PyKCS11.CKA_LABEL, label)]
    priv = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
            (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
            (PyKCS11.CKA_TOKEN, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_PRIVATE, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_SIGN, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_SENSITIVE, PyKCS11.CK_FALSE),
            (PyKCS11.CKA_EXTRACTABLE, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_LABEL, label)]
    ses.generateKeyPair(pub, priv, mecha=PyKCS11.MechanismECGENERATEKEYPAIR)
    return 0


def main():
    if len(sys.argv) != 6 or sys.argv[1] not in ("read", "make-extractable"):
        print(__doc__, file=sys.stderr)
        return 1
    cmd, module, token, pin_file, label = sys.argv[1:]
    _lib, ses = session(module, token, pin_file)
    try:
        if cmd == "read":
            return read_private(ses, label)
        return make_extractable(ses, label)
    finally:
        ses.logout()
        ses.closeSession()


if __name__ == "__main__":
    sys.exit(main())
