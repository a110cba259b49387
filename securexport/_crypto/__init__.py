"""The hazardous layer: the only place in securexport that touches cryptographic primitives.

Everything here is a thin layer over ``cryptography`` (pyca) and ``pyrage``; nothing invents
cryptography.  Two kinds of module live here:

* wrappers that name the primitives the product uses and how: :mod:`.aead` (AES-256-GCM over
  numbered records, for the scratch spool), :mod:`.kdf` (HKDF-SHA256), :mod:`.ed25519`
  (signing keys: generate, raw public bytes, OpenSSH PEM);
* format code over them, checked against the standard tools and published vectors:
  :mod:`.sshkey` and :mod:`.sshsig` (OpenSSH keys, SSHSIG signatures), :mod:`.agefile` (age
  files), :mod:`.merkle` (RFC 6962 hashing and proofs), :mod:`.note` and :mod:`.cosignature`
  (C2SP signed notes, checkpoints and witness cosignatures).

The rooms above (api, home, ledger, bundle, data, policy) import these modules and nothing of
``cryptography`` or ``pyrage`` themselves; outside this package a private key is an opaque
:data:`.ed25519.SigningKey` handed back to the code here that signs with it.  (They do use the
standard library's ``hashlib``, ``hmac`` and ``secrets`` for plain SHA-256 digests, the
manifest's per-file HMAC-SHA-256 and random tokens.)  The CLI never imports this package.
Failures are deliberately opaque: one error, never a detailed oracle.
"""
