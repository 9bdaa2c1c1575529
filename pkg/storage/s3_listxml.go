package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithytime "github.com/aws/smithy-go/time"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The SDK decodes a ListObjectsV2 page of 1000 keys in about 11 ms of
// CPU (encoding/xml under smithy's node decoder, 74,000 allocations),
// and garbage collection lists every key of the registry on a machine
// it may share with the server. listFast reads the few fields ListFiles
// needs from the body itself, in a tenth of that (BenchmarkParseListPage).

// listPage is one ListObjectsV2 page, as ListFiles uses it.
type listPage struct {
	objects   []listedObject
	truncated bool
	next      string // NextContinuationToken
}

type listedObject struct {
	key, etag string
	size      int64
	modTime   time.Time
}

// sdkListPage is the page the SDK decoded.
func sdkListPage(out *s3.ListObjectsV2Output) *listPage {
	p := &listPage{truncated: aws.ToBool(out.IsTruncated), next: aws.ToString(out.NextContinuationToken)}
	for _, o := range out.Contents {
		p.objects = append(p.objects, listedObject{key: aws.ToString(o.Key), etag: aws.ToString(o.ETag), size: aws.ToInt64(o.Size), modTime: aws.ToTime(o.LastModified)})
	}
	return p
}

// listFast is a ListObjectsV2 option: a successful response's body is
// read by parseListPage into *dst and the SDK gets an empty body to
// decode. Everything else is the SDK's as usual: error responses
// (S3's "200 with an error" included: the SDK turns them into a 500
// before this runs), retries, logging, and pages parseListPage does
// not understand, which it leaves in the body for the SDK and *dst nil.
func listFast(dst **listPage) func(*s3.Options) {
	mw := middleware.DeserializeMiddlewareFunc("regctlListFast", func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
		*dst = nil // a retried attempt starts afresh
		out, md, err := next.HandleDeserialize(ctx, in)
		resp, ok := out.RawResponse.(*smithyhttp.Response)
		if err != nil || !ok || resp.StatusCode < 200 || resp.StatusCode >= 300 {
			return out, md, err
		}
		// Sized for the whole page (S3 servers say its length), not
		// grown from 512 bytes to 300 kB.
		buf := bytes.NewBuffer(make([]byte, 0, min(max(resp.ContentLength, 0), 4<<20)+512))
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		body := buf.Bytes()
		if err != nil {
			// As the SDK's decoder reports a body cut short.
			return out, md, &smithy.DeserializationError{Err: fmt.Errorf("failed to decode response body, %w", err)}
		}
		if page, ok := parseListPage(body); ok {
			*dst, body = page, nil
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return out, md, nil
	})
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			// Inside the SDK's decoder, so that it decodes what is left.
			return st.Deserialize.Insert(mw, "OperationDeserializer", middleware.After)
		})
	}
}

// parseListPage reads a ListObjectsV2 result: IsTruncated,
// NextContinuationToken and each Contents' Key, ETag, Size and
// LastModified, matching names as the SDK does (case-insensitively,
// whatever the root). It knows elements, attributes, the XML
// declarations S3 servers send, the five named entities and character
// references. Given anything else (comments, CDATA, a DOCTYPE,
// prefixed names, carriage returns, malformed XML) it reports false, so
// that the SDK decodes the page, or fails on it, as before.
func parseListPage(b []byte) (*listPage, bool) {
	page := &listPage{}
	if n := bytes.Count(b, []byte("<Contents>")); n > 0 {
		page.objects = make([]listedObject, 0, n)
	}
	var (
		open [][]byte // names of the open elements
		leaf bool     // no child element since the last start tag
		text []byte   // the text since the last tag
	)
	for i := 0; i < len(b); {
		if b[i] != '<' {
			j := bytes.IndexByte(b[i:], '<')
			if j < 0 {
				j = len(b) - i
			}
			text = b[i : i+j]
			i += j
			if !unescape(text, nil) { // encoding/xml checks all text
				return nil, false
			}
			continue
		}
		if i+1 == len(b) {
			return nil, false
		}
		switch b[i+1] {
		case '?':
			decl := xmlDecl(b[i:])
			if i != 0 || decl == 0 {
				return nil, false
			}
			i += decl
			continue
		case '!': // comments, CDATA, DOCTYPE
			return nil, false
		case '/':
			j := bytes.IndexByte(b[i:], '>')
			if j < 0 || len(open) == 0 {
				return nil, false
			}
			name := b[i+2 : i+j]
			for len(name) > 0 && isSpace(name[len(name)-1]) {
				name = name[:len(name)-1]
			}
			if !bytes.Equal(name, open[len(open)-1]) || !page.end(open, leaf, text) {
				return nil, false
			}
			i += j + 1
			open, leaf, text = open[:len(open)-1], false, nil
			if len(open) == 0 {
				return page, true // the SDK reads no further either
			}
			continue
		}
		// A start tag.
		name, j, ok := startTag(b, i+1)
		if !ok {
			return nil, false
		}
		i = j + 1
		open, leaf, text = append(open, name), true, nil
		if len(open) == 2 && eqFold(name, "Contents") {
			page.objects = append(page.objects, listedObject{})
		}
		if b[j-1] == '/' { // <Name/>
			if !page.end(open, true, nil) {
				return nil, false
			}
			open, leaf = open[:len(open)-1], false
			if len(open) == 0 {
				return page, true
			}
		}
	}
	// Cut short, or no root element: the SDK reads an empty body as an
	// empty page and fails on the rest.
	return page, len(open) == 0 && len(bytes.TrimSpace(b)) == 0
}

// end takes the value of the element closing as the last of open, when
// it is one parseListPage reads. leaf reports that it had no child
// elements, raw is its text.
func (page *listPage) end(open [][]byte, leaf bool, raw []byte) bool {
	name := open[len(open)-1]
	inContents := len(open) == 3 && eqFold(open[1], "Contents")
	var dst *string
	switch {
	case len(open) == 2 && eqFold(name, "IsTruncated"):
	case len(open) == 2 && eqFold(name, "NextContinuationToken"):
		dst = &page.next
	case inContents && eqFold(name, "Key"):
		dst = &page.objects[len(page.objects)-1].key
	case inContents && eqFold(name, "ETag"):
		dst = &page.objects[len(page.objects)-1].etag
	case inContents && (eqFold(name, "Size") || eqFold(name, "LastModified")):
	default:
		return true
	}
	if !leaf {
		return false // the SDK fails on a value with child elements
	}
	s, ok := xmlText(raw)
	if !ok {
		return false
	}
	var err error
	switch {
	case dst != nil:
		*dst = s
	case len(open) == 2:
		page.truncated, err = strconv.ParseBool(s)
	case eqFold(name, "Size"):
		page.objects[len(page.objects)-1].size, err = strconv.ParseInt(s, 10, 64)
	default:
		page.objects[len(page.objects)-1].modTime, err = smithytime.ParseDateTime(s)
	}
	return err == nil
}

// xmlDecls are the XML declarations known to be sent by S3 servers.
var xmlDecls = []string{
	`<?xml version="1.0" encoding="UTF-8"?>`,
	`<?xml version="1.0" encoding="utf-8"?>`,
	`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`,
	`<?xml version="1.0"?>`,
	`<?xml version='1.0' encoding='UTF-8'?>`,
}

// xmlDecl is the length of the XML declaration b starts with, 0 for
// one not known.
func xmlDecl(b []byte) int {
	for _, d := range xmlDecls {
		if bytes.HasPrefix(b, []byte(d)) {
			return len(d)
		}
	}
	return 0
}

// startTag reads a start tag's name and attributes from b[i:], up to
// the '>' at j. The grammar is XML's, with element names of ASCII
// letters, digits, '_', '-' and '.', and attribute values without
// references.
func startTag(b []byte, i int) (name []byte, j int, ok bool) {
	xmlName := func(colon bool) []byte {
		k := i
		for k < len(b) && (b[k] >= 'a' && b[k] <= 'z' || b[k] >= 'A' && b[k] <= 'Z' || b[k] == '_' ||
			k > i && (b[k] >= '0' && b[k] <= '9' || b[k] == '-' || b[k] == '.' || colon && b[k] == ':')) {
			k++
		}
		n := b[i:k]
		i = k
		return n
	}
	skipSpace := func() bool {
		k := i
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		return i > k
	}
	name = xmlName(false)
	if len(name) == 0 {
		return nil, 0, false
	}
	for {
		spaced := skipSpace()
		switch {
		case i < len(b) && b[i] == '>':
			return name, i, true
		case i+1 < len(b) && b[i] == '/' && b[i+1] == '>':
			return name, i + 1, true
		case !spaced || len(xmlName(true)) == 0:
			return nil, 0, false
		}
		skipSpace()
		if i == len(b) || b[i] != '=' {
			return nil, 0, false
		}
		i++
		skipSpace()
		if i == len(b) || b[i] != '"' && b[i] != '\'' {
			return nil, 0, false
		}
		end := bytes.IndexByte(b[i+1:], b[i])
		if end < 0 || bytes.ContainsAny(b[i+1:i+1+end], "<&") {
			return nil, 0, false
		}
		i += end + 2
	}
}

// eqFold is strings.EqualFold for a want of ASCII letters.
func eqFold(b []byte, want string) bool {
	if len(b) != len(want) {
		return false
	}
	for i := range len(b) {
		if b[i]|0x20 != want[i]|0x20 {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// plainByte marks the bytes XML text holds as they are: printable
// ASCII but '&', tab and newline.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '&'
	}
	t['\t'], t['\n'] = true, true
	return t
}()

// plainPrefix is the length of raw's leading plain bytes.
func plainPrefix(raw []byte) int {
	i := 0
	for i < len(raw) && plainByte[raw[i]] {
		i++
	}
	return i
}

// xmlText unescapes character data as encoding/xml does, reporting
// false for what it would reject or change (carriage returns, which
// XML turns into newlines).
func xmlText(raw []byte) (string, bool) {
	if plainPrefix(raw) == len(raw) {
		return string(raw), true // the usual case
	}
	var sb strings.Builder
	sb.Grow(len(raw))
	if !unescape(raw, &sb) {
		return "", false
	}
	return sb.String(), true
}

// unescape writes raw to sb, references replaced, or only checks it
// when sb is nil.
func unescape(raw []byte, sb *strings.Builder) bool {
	for {
		n := plainPrefix(raw)
		if sb != nil {
			sb.Write(raw[:n])
		}
		raw = raw[n:]
		if len(raw) == 0 {
			return true
		}
		if raw[0] == '&' {
			j := bytes.IndexByte(raw, ';')
			if j < 0 {
				return false
			}
			r, ok := xmlEntity(string(raw[1:j]))
			if !ok {
				return false
			}
			if sb != nil {
				sb.WriteRune(r)
			}
			raw = raw[j+1:]
			continue
		}
		// '\r' and other control characters, which XML does not allow
		// or changes, invalid UTF-8, or another character.
		r, n := utf8.DecodeRune(raw)
		if r < 0x20 || r == utf8.RuneError && n == 1 || !xmlChar(r) {
			return false
		}
		if sb != nil {
			sb.Write(raw[:n])
		}
		raw = raw[n:]
	}
}

// xmlEntity is the character an entity or character reference names.
func xmlEntity(s string) (rune, bool) {
	switch s {
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "amp":
		return '&', true
	case "apos":
		return '\'', true
	case "quot":
		return '"', true
	}
	if len(s) < 2 || s[0] != '#' {
		return 0, false
	}
	base, digits := 10, s[1:]
	if s[1] == 'x' {
		base, digits = 16, s[2:]
	}
	if digits == "" || digits[0] == '+' || digits[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, base, 32)
	if err != nil || !xmlChar(rune(n)) {
		return 0, false
	}
	return rune(n), true
}

// xmlChar is XML's Char production, as encoding/xml checks it.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}
