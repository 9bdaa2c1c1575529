package gconline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// The doom files are one line of JSON followed by a line with the sha256
// of that first line:
//
//	{"format":"regctl-gc-doom-shard/1",...}
//	sha256:<64 hex>
//
// JSON because these files are few (at most 257 per run), read once per
// node and run, and someone will cat them during an incident; the
// trailer because a reader must never act on half a file: a truncated or
// altered file fails the checksum, whichever byte is gone.

const sumPrefix = "sha256:"

// seal encodes v as a sealed file. encoding/json writes struct fields in
// their order and map keys sorted, so equal values give equal bytes.
func seal(v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	sum := sha256.Sum256(body)
	return fmt.Appendf(body, "%s%x\n", sumPrefix, sum), nil
}

// unseal checks a sealed file's trailer and decodes its body into v;
// the body's "format" must be format.
func unseal(b []byte, format string, v any) error {
	body, trailer, err := splitSealed(b)
	if err != nil {
		return fmt.Errorf("gconline: %s: %w", format, err)
	}
	want, _ := hex.DecodeString(trailer[len(sumPrefix):])
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], want) {
		return fmt.Errorf("gconline: %s: checksum mismatch (the file is corrupt or truncated)", format)
	}
	// The format first, leniently: a newer version may have new fields.
	var head struct{ Format string }
	if err := json.Unmarshal(body, &head); err != nil {
		return fmt.Errorf("gconline: %s: %w", format, err)
	}
	if head.Format != format {
		return fmt.Errorf("gconline: unsupported format %q (want %q)", head.Format, format)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("gconline: %s: %w", format, err)
	}
	return nil
}

// splitSealed cuts a sealed file into its body (with its newline) and
// its trailer line (without).
func splitSealed(b []byte) (body []byte, trailer string, err error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, "", errors.New("truncated: no final newline")
	}
	i := bytes.LastIndexByte(b[:len(b)-1], '\n')
	if i < 0 {
		return nil, "", errors.New("truncated: no checksum line")
	}
	body, trailer = b[:i+1], string(b[i+1:len(b)-1])
	if len(trailer) != len(sumPrefix)+2*sha256.Size || trailer[:len(sumPrefix)] != sumPrefix || !isLowerHex(trailer[len(sumPrefix):]) {
		return nil, "", errors.New("truncated or corrupt: malformed checksum line")
	}
	return body, trailer, nil
}
