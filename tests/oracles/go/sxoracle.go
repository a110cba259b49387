// Command sxoracle checks securexport's ledger artefacts with Go's golang.org/x/mod/sumdb/note
// and golang.org/x/mod/sumdb/tlog, independently of securexport's own code (issue 13).
//
//	sxoracle note VKEY NOTE                      a signed note (checkpoint) verifies under VKEY
//	sxoracle receipt VKEY RECEIPT LEAF           a c2sp.org/tlog-proof@v1 receipt proves LEAF
//	sxoracle sync VKEY SYNC [OLD-NOTE]           a ledger sync file: its checkpoint, and either
//	                                             the root recomputed from its entries (since 0)
//	                                             or its consistency proof from OLD-NOTE
//	sxoracle cosig VKEY WITNESS-VKEY NOTE        a checkpoint cosigned (cosignature/v1) by the
//	                                             witness and signed by the log
//
// Exit status 0: valid (a one-line summary on stdout); 1: invalid (the reason on stderr);
// 2: usage.  Built by tests/support/oracles.py in GOPATH mode from Debian's
// golang-golang-x-mod-dev, with no module proxy.  That x/mod (v0.7.0) predates cosignature/v1
// keys, so the witness verifier below implements c2sp.org/tlog-cosignature with crypto/ed25519:
// note.Open still parses the note and finds the signature line.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

// strictB64 decodes padded standard base64 that re-encodes to the same text.
func strictB64(s string) ([]byte, error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(raw) != s {
		return nil, fmt.Errorf("bad base64 %q", s)
	}
	return raw, nil
}

func hash32(s string) (tlog.Hash, error) {
	raw, err := strictB64(s)
	if err != nil || len(raw) != tlog.HashSize {
		return tlog.Hash{}, fmt.Errorf("bad hash %q", s)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h, nil
}

// parseCheckpoint reads a c2sp.org/tlog-checkpoint body: origin, size, base64 root, extensions.
func parseCheckpoint(text string) (checkpoint, error) {
	if !strings.HasSuffix(text, "\n") {
		return checkpoint{}, errors.New("checkpoint does not end in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 || lines[0] == "" {
		return checkpoint{}, errors.New("malformed checkpoint")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return checkpoint{}, errors.New("malformed checkpoint size")
	}
	root, err := hash32(lines[2])
	if err != nil {
		return checkpoint{}, err
	}
	return checkpoint{lines[0], size, root}, nil
}

// openCheckpoint verifies a signed note with the log's key, whose name must be the origin.
func openCheckpoint(vkey string, msg []byte, extra ...note.Verifier) (checkpoint, *note.Note, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return checkpoint{}, nil, fmt.Errorf("verifier key: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(append([]note.Verifier{v}, extra...)...))
	if err != nil {
		return checkpoint{}, nil, fmt.Errorf("note: %v", err)
	}
	signedByLog := false
	for _, sig := range n.Sigs {
		signedByLog = signedByLog || (sig.Name == v.Name() && sig.Hash == v.KeyHash())
	}
	if !signedByLog {
		return checkpoint{}, nil, errors.New("note: not signed by the log key")
	}
	c, err := parseCheckpoint(n.Text)
	if err != nil {
		return checkpoint{}, nil, err
	}
	if c.origin != v.Name() {
		return checkpoint{}, nil, fmt.Errorf("checkpoint origin %q is not the key name %q", c.origin, v.Name())
	}
	return c, n, nil
}

// parseReceipt reads a c2sp.org/tlog-proof@v1: header, [extra], index, hashes, blank, note.
func parseReceipt(data []byte) (int64, tlog.RecordProof, []byte, error) {
	head, signed, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok || len(signed) == 0 {
		return 0, nil, nil, errors.New("malformed receipt")
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		return 0, nil, nil, errors.New("not a c2sp.org/tlog-proof@v1")
	}
	lines = lines[1:]
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		if _, err := strictB64(strings.TrimPrefix(lines[0], "extra ")); err != nil {
			return 0, nil, nil, err
		}
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return 0, nil, nil, errors.New("receipt has no index line")
	}
	text := strings.TrimPrefix(lines[0], "index ")
	index, err := strconv.ParseInt(text, 10, 64)
	if err != nil || index < 0 || strconv.FormatInt(index, 10) != text {
		return 0, nil, nil, errors.New("malformed receipt index")
	}
	var proof tlog.RecordProof
	for _, line := range lines[1:] {
		h, err := hash32(line)
		if err != nil {
			return 0, nil, nil, err
		}
		proof = append(proof, h)
	}
	return index, proof, signed, nil
}

// treeHash is the RFC 6962 root of the records, computed with tlog's stored-hash machinery.
func treeHash(records [][]byte) (tlog.Hash, error) {
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i, rec := range records {
		hashes, err := tlog.StoredHashes(int64(i), rec, reader)
		if err != nil {
			return tlog.Hash{}, err
		}
		stored = append(stored, hashes...)
	}
	return tlog.TreeHash(int64(len(records)), reader)
}

type syncFile struct {
	Schema      string   `json:"schema"`
	Origin      string   `json:"origin"`
	Since       int64    `json:"since"`
	Checkpoint  string   `json:"checkpoint"`
	Consistency []string `json:"consistency"`
	Entries     []struct {
		Index    int64  `json:"index"`
		Manifest string `json:"manifest"`
	} `json:"entries"`
}

func checkSync(vkey string, data []byte, oldNote []byte) (string, error) {
	var doc syncFile
	if err := json.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("sync file: %v", err)
	}
	if doc.Schema != "securexport.ledger-sync/1" {
		return "", fmt.Errorf("sync file schema %q", doc.Schema)
	}
	c, _, err := openCheckpoint(vkey, []byte(doc.Checkpoint))
	if err != nil {
		return "", err
	}
	if doc.Origin != c.origin || int64(len(doc.Entries)) != c.size-doc.Since {
		return "", errors.New("sync file: origin or entry count does not match its checkpoint")
	}
	var records [][]byte
	for i, e := range doc.Entries {
		raw, err := strictB64(e.Manifest)
		if err != nil || e.Index != doc.Since+int64(i) {
			return "", fmt.Errorf("sync file: entry %d", i)
		}
		records = append(records, raw)
	}
	var proof tlog.TreeProof
	for _, s := range doc.Consistency {
		h, err := hash32(s)
		if err != nil {
			return "", err
		}
		proof = append(proof, h)
	}
	if oldNote == nil {
		if doc.Since != 0 {
			return "", errors.New("sync file from a non-zero size needs the old checkpoint")
		}
		root, err := treeHash(records)
		if err != nil {
			return "", err
		}
		if root != c.root || len(proof) != 0 {
			return "", errors.New("the entries' tree hash is not the checkpoint's root")
		}
		return fmt.Sprintf("sync %s 0..%d root of %d entries", c.origin, c.size, len(records)), nil
	}
	old, _, err := openCheckpoint(vkey, oldNote)
	if err != nil {
		return "", fmt.Errorf("old checkpoint: %v", err)
	}
	if old.size != doc.Since {
		return "", errors.New("the old checkpoint's size is not the sync file's since")
	}
	if err := tlog.CheckTree(proof, c.size, c.root, old.size, old.root); err != nil {
		return "", fmt.Errorf("consistency: %v", err)
	}
	return fmt.Sprintf("sync %s %d..%d consistent", c.origin, old.size, c.size), nil
}

// cosigVerifier is a note.Verifier for c2sp.org/tlog-cosignature v1 (key type 0x04): the
// signature is uint64 time || Ed25519 over "cosignature/v1\ntime <t>\n" || checkpoint.
type cosigVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
	time *uint64
}

func (v *cosigVerifier) Name() string    { return v.name }
func (v *cosigVerifier) KeyHash() uint32 { return v.hash }
func (v *cosigVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	signed := append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", t)), msg...)
	if !ed25519.Verify(v.key, signed, sig[8:]) {
		return false
	}
	*v.time = t
	return true
}

func newCosigVerifier(vkey string) (*cosigVerifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, errors.New("witness key: not name+id+key")
	}
	raw, err := strictB64(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 0x04 {
		return nil, errors.New("witness key: not a cosignature/v1 Ed25519 key")
	}
	digest := sha256.Sum256([]byte(parts[0] + "\n" + string(raw)))
	if hex.EncodeToString(digest[:4]) != parts[1] {
		return nil, errors.New("witness key: the key id does not match")
	}
	return &cosigVerifier{parts[0], binary.BigEndian.Uint32(digest[:4]), ed25519.PublicKey(raw[1:]), new(uint64)}, nil
}

func checkCosig(vkey, wkey string, msg []byte) (string, error) {
	w, err := newCosigVerifier(wkey)
	if err != nil {
		return "", err
	}
	c, n, err := openCheckpoint(vkey, msg, w)
	if err != nil {
		return "", err
	}
	for _, sig := range n.Sigs {
		if sig.Name == w.name && sig.Hash == w.hash {
			return fmt.Sprintf("cosig %s %d by %s at %d", c.origin, c.size, w.name, *w.time), nil
		}
	}
	return "", errors.New("no cosignature by the witness key")
}

func read(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sxoracle:", err)
		os.Exit(2)
	}
	return data
}

func run(args []string) (string, error) {
	switch {
	case len(args) == 3 && args[0] == "note":
		c, _, err := openCheckpoint(args[1], read(args[2]))
		return fmt.Sprintf("note %s %d %s", c.origin, c.size, c.root), err
	case len(args) == 4 && args[0] == "receipt":
		index, proof, signed, err := parseReceipt(read(args[2]))
		if err != nil {
			return "", err
		}
		c, _, err := openCheckpoint(args[1], signed)
		if err != nil {
			return "", err
		}
		if err := tlog.CheckRecord(proof, c.size, c.root, index, tlog.RecordHash(read(args[3]))); err != nil {
			return "", fmt.Errorf("inclusion: %v", err)
		}
		return fmt.Sprintf("receipt %s index %d of %d", c.origin, index, c.size), nil
	case (len(args) == 3 || len(args) == 4) && args[0] == "sync":
		var old []byte
		if len(args) == 4 {
			old = read(args[3])
		}
		return checkSync(args[1], read(args[2]), old)
	case len(args) == 4 && args[0] == "cosig":
		return checkCosig(args[1], args[2], read(args[3]))
	}
	fmt.Fprintln(os.Stderr, "usage: sxoracle note|receipt|sync|cosig VKEY ...")
	os.Exit(2)
	return "", nil
}

func main() {
	summary, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "sxoracle: invalid:", err)
		os.Exit(1)
	}
	fmt.Println(summary)
}
