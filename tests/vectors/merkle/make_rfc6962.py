"""Write rfc6962.json from constants transcribed from transparency-dev/merkle (see README)."""

import json

# Upstream constants, transcribed from github.com/transparency-dev/merkle
# (testonly/constants.go and proof/verify_test.go), Apache-2.0.
leaves = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
leaf_hashes = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
]
roots = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
compact = [
    [],
    ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
    ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    ],
    ["d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
# inclusion: upstream {leaf (1-based), size, proof}
incl = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        2,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (1, 1, []),
]
cons = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (1, 1, []),
]
SOME = "abacaba000000000000000000000000000000000000000000060061e00123456"
EMPTY = roots[0]


def flip(h, bit):
    b = bytearray.fromhex(h)
    b[0] ^= bit
    return b.hex()


inclusion = []
for leaf1, size, proof in incl:
    idx = leaf1 - 1
    lh = leaf_hashes[idx]
    root = roots[size]
    base = {"leaf_hash": lh, "index": idx, "size": size, "root": root}
    inclusion.append(dict(base, proof=proof, valid=True, desc="upstream proof"))
    bad = [
        ("index - 1", {"index": idx - 1}),
        ("index + 1", {"index": idx + 1}),
        ("index ^ 2", {"index": idx ^ 2}),
        ("size * 2", {"size": size * 2}),
        ("size / 2", {"size": size // 2}),
        ("wrong leaf", {"leaf_hash": "57726f6e674c656166"}),
        ("empty root", {"root": EMPTY}),
        ("random root", {"root": SOME}),
        ("trailing empty element", {"proof": [*proof, ""]}),
        ("trailing root", {"proof": [*proof, root]}),
        ("preceding empty element", {"proof": ["", *proof]}),
        ("preceding root", {"proof": [root, *proof]}),
    ]
    for i in range(len(proof)):
        p = list(proof)
        p[i] = flip(p[i], 8)
        bad.append((f"proof[{i}] bit 3 flipped", {"proof": p}))
    if proof:
        bad.append(("removed last element", {"proof": proof[:-1]}))
    if len(proof) > 1:
        bad.append(("inserted element", {"proof": [proof[0], SOME, *proof[1:]]}))
    for desc, change in bad:
        case = dict(base, proof=proof, valid=False, desc=desc)
        case.update(change)
        if case["index"] < 0 or case["size"] < 0:
            continue
        inclusion.append(case)
# degenerate cases (upstream TestVerifyInclusion / SingleEntry)
for idx, size in [(0, 0), (0, 1), (1, 0), (2, 1)]:
    inclusion.append(
        {
            "leaf_hash": SOME,
            "index": idx,
            "size": size,
            "root": "",
            "proof": [],
            "valid": False,
            "desc": "empty root",
        }
    )
    inclusion.append(
        {
            "leaf_hash": "",
            "index": idx,
            "size": size,
            "root": EMPTY,
            "proof": [],
            "valid": False,
            "desc": "empty leaf",
        }
    )
    inclusion.append(
        {
            "leaf_hash": SOME,
            "index": idx,
            "size": size,
            "root": EMPTY,
            "proof": [],
            "valid": False,
            "desc": "leaf is not the root",
        }
    )

consistency = []
for m, n, proof in cons:
    r1, r2 = roots[m], roots[n]
    base = {"old_size": m, "new_size": n, "old_root": r1, "new_root": r2}
    consistency.append(dict(base, proof=proof, valid=True, desc="upstream proof"))
    if not proof:
        continue
    bad = [
        ("old_size - 1", {"old_size": m - 1}),
        ("old_size + 1", {"old_size": m + 1}),
        ("old_size ^ 2", {"old_size": m ^ 2}),
        ("new_size * 2", {"new_size": n * 2}),
        ("new_size / 2", {"new_size": n // 2}),
        ("wrong old root", {"old_root": "57726f6e67526f6f74"}),
        ("wrong new root", {"new_root": "57726f6e67526f6f74"}),
        ("swapped roots", {"old_root": r2, "new_root": r1}),
        ("empty proof", {"proof": []}),
        ("trailing empty element", {"proof": [*proof, ""]}),
        ("trailing old root", {"proof": [*proof, r1]}),
        ("trailing new root", {"proof": [*proof, r2]}),
        ("preceding empty element", {"proof": ["", *proof]}),
        ("preceding old root", {"proof": [r1, *proof]}),
        ("preceding new root", {"proof": [r2, *proof]}),
        ("preceding proof[0]", {"proof": [proof[0], *proof]}),
        ("truncated", {"proof": proof[:-1]}),
    ]
    for i in range(len(proof)):
        p = list(proof)
        p[i] = flip(p[i], 16)
        bad.append((f"proof[{i}] bit 4 flipped", {"proof": p}))
    for desc, change in bad:
        case = dict(base, proof=proof, valid=False, desc=desc)
        case.update(change)
        consistency.append(case)
R1, R2 = "646f6e27742063617265203120", "646f6e27742063617265203220"
for m, n, a, b, p, ok, desc in [
    (0, 0, R1, R2, [], False, "equal sizes, different roots"),
    (1, 1, R1, R2, [], False, "equal sizes, different roots"),
    (1, 1, R2, R2, [], False, "equal sizes, same roots but not 32-byte hashes"),
    (1, 1, roots[1], roots[1], [], True, "equal sizes, same root"),
    (0, 1, EMPTY, roots[1], [], True, "from the empty tree"),
    (1, 0, R1, R2, [], False, "time travel to the past"),
    (2, 1, roots[2], roots[1], [], False, "time travel to the past"),
    (1, 2, roots[1], roots[2], [], False, "empty proof"),
    (0, 0, EMPTY, R2, [], False, "roots differ"),
    (1, 1, EMPTY, R2, [], False, "roots differ"),
    (0, 0, EMPTY, EMPTY, [EMPTY], False, "same roots, non-empty proof"),
    (0, 1, EMPTY, EMPTY, [EMPTY], False, "same roots, non-empty proof"),
    (1, 1, EMPTY, EMPTY, [EMPTY], False, "same roots, non-empty proof"),
]:
    consistency.append(
        {
            "old_size": m,
            "new_size": n,
            "old_root": a,
            "new_root": b,
            "proof": p,
            "valid": ok,
            "desc": desc,
        }
    )

doc = {
    "source": "github.com/transparency-dev/merkle (testonly/constants.go, proof/verify_test.go), Apache-2.0",
    "hash": "RFC 6962 SHA-256: leaf = SHA256(0x00||d), node = SHA256(0x01||l||r); all values hex",
    "leaves": leaves,
    "leaf_hashes": leaf_hashes,
    "roots": roots,
    "compact_ranges": compact,
    "inclusion": inclusion,
    "consistency": consistency,
}
with open(__import__("pathlib").Path(__file__).with_name("rfc6962.json"), "w") as fh:
    json.dump(doc, fh, indent=1)
    fh.write("\n")
print(len(inclusion), len(consistency))
