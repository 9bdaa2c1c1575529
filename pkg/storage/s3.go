package storage

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/time/rate"
)

var (
	_ Driver     = (*S3)(nil)
	_ Redirector = (*S3)(nil)
)

// S3 limits and defaults. Sizes are those Distribution's s3 driver
// documents, so a config.yml means the same to both programs.
const (
	s3MinPartSize            = 5 << 20  // S3's smallest part, except the last
	s3MaxCopyPartSize        = 5 << 30  // the largest CopyObject / UploadPartCopy
	s3MaxParts               = 10000    // parts in one multipart upload
	s3DeleteBatch            = 1000     // keys in one DeleteObjects call
	defaultS3ChunkSize       = 10 << 20 // chunksize
	defaultS3CopyChunkSize   = 32 << 20 // multipartcopychunksize
	defaultS3CopyConcurrency = 100      // multipartcopymaxconcurrency
	defaultS3CopyThreshold   = 32 << 20 // multipartcopythresholdsize
	s3RedirectExpiry         = 20 * time.Minute
	s3MaxAttempts            = 5   // per request, transient 5xx and SlowDown included
	s3MaxIdleConns           = 256 // kept open to the endpoint between requests
)

// The objects a Writer keeps next to its key while a write is in
// progress. List and Walk never show them, and paths ending with these
// suffixes are refused, so a caller cannot name them.
const (
	s3StateSuffix   = ".regctl-upload"  // JSON: multipart upload id, parts, tail size
	s3PendingSuffix = ".regctl-pending" // the tail shorter than a part
)

// S3Options are the parts of an S3 driver that do not come from the
// storage.s3 settings.
type S3Options struct {
	// Setting is the settings path errors name, "storage.s3" when empty
	// ("migration.s3" for migrate-storage's target).
	Setting string
	// Logger receives the SDK's warnings and, with loglevel, its debug
	// output; slog.Default() when nil.
	Logger *slog.Logger
}

// S3 is the driver for an S3 bucket (AWS or a compatible server), with
// Distribution's key layout: driver path p is the key
// rootdirectory + p, without the leading slash ("docker/registry/v2/..."
// when rootdirectory is empty). Everything it knows lives in the bucket,
// so several nodes can share one bucket, in-progress writes included.
type S3 struct {
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
	prefix  string // rootdirectory + "/", or "" for the bucket's root

	chunkSize       int64
	copyChunkSize   int64
	copyConcurrency int
	copyThreshold   int64

	sse          types.ServerSideEncryption
	kmsKeyID     string
	storageClass types.StorageClass // "" sends none (storageclass NONE)
	acl          types.ObjectCannedACL

	setting  string
	region   string
	endpoint string // regionendpoint as given, for error messages

	listPageSize int32 // 0: S3's maximum; tests of paging set less

	// sdkChecksums: checksum = when_supported, the SDK computes
	// checksums and signs bodies itself (see bodyOpts).
	sdkChecksums bool
}

// s3Config is the storage.s3 settings, read and checked.
type s3Config struct {
	accessKey, secretKey, sessionToken string
	bucket, region, endpoint           string
	pathStyle, secure, skipVerify      bool
	encrypt                            bool
	keyID                              string
	chunkSize, copyChunkSize           int64
	copyConcurrency                    int
	copyThreshold                      int64
	maxRequestsPerSecond               int
	rootDirectory                      string
	storageClass                       string
	objectACL                          string
	logMode                            aws.ClientLogMode
	checksum                           string
	userAgent                          string
	dualStack, accelerate              bool
}

// params reads typed values out of a driver's parameter map; config
// files, the environment and tests hand over ints, int64s, floats or
// strings, so all are accepted.
type params struct {
	m       map[string]any
	setting string
	errs    []string
}

func (p *params) fail(key, format string, args ...any) {
	p.errs = append(p.errs, fmt.Sprintf("%s.%s: ", p.setting, key)+fmt.Sprintf(format, args...))
}

func (p *params) str(key, def string) string {
	switch v := p.m[key].(type) {
	case nil:
		return def
	case string:
		return v
	case fmt.Stringer:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

func (p *params) boolean(key string, def bool) (bool, bool) {
	switch v := p.m[key].(type) {
	case nil:
		return def, false
	case bool:
		return v, true
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			p.fail(key, "%q is not true or false", v)
			return def, false
		}
		return b, true
	default:
		p.fail(key, "%v is not true or false", v)
		return def, false
	}
}

func (p *params) integer(key string, def, min int64) int64 {
	var n int64
	switch v := p.m[key].(type) {
	case nil:
		return def
	case int:
		n = int64(v)
	case int64:
		n = v
	case int32:
		n = int64(v)
	case uint64:
		n = int64(v)
	case float64:
		if v != float64(int64(v)) {
			p.fail(key, "%v is not a whole number", v)
			return def
		}
		n = int64(v)
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			p.fail(key, "%q is not a whole number", v)
			return def
		}
		n = i
	default:
		p.fail(key, "%v is not a whole number", v)
		return def
	}
	if n < min {
		p.fail(key, "%d is below the minimum of %d", n, min)
		return def
	}
	return n
}

// parseS3Config reads the settings Distribution's s3 driver documents,
// plus GitLab's pathstyle and maxrequestspersecond and regctl's checksum.
func parseS3Config(m map[string]any, setting string) (s3Config, error) {
	p := &params{m: m, setting: setting}
	c := s3Config{
		accessKey:    p.str("accesskey", ""),
		secretKey:    p.str("secretkey", ""),
		sessionToken: p.str("sessiontoken", ""),
		bucket:       p.str("bucket", ""),
		region:       p.str("region", ""),
		endpoint:     strings.TrimSpace(p.str("regionendpoint", "")),
		keyID:        p.str("keyid", ""),
		storageClass: p.str("storageclass", string(types.StorageClassStandard)),
		objectACL:    p.str("objectacl", ""),
		checksum:     p.str("checksum", "when_required"),
		userAgent:    p.str("useragent", ""),
	}
	c.rootDirectory = strings.Trim(p.str("rootdirectory", ""), "/")
	if c.bucket == "" {
		p.fail("bucket", "is required")
	} else if strings.Contains(c.bucket, "/") {
		p.fail("bucket", "%q must be a bucket name without folders: use rootdirectory for a prefix", c.bucket)
	}
	if c.region == "" {
		// The SDK signs with the region even for S3-compatible servers.
		p.fail("region", "is required (use the server's region, often us-east-1, for S3-compatible servers)")
	}
	if (c.accessKey == "") != (c.secretKey == "") {
		p.fail("accesskey/secretkey", "set both or neither (neither uses the environment, shared config or an IAM role)")
	}
	ps, hasPS := p.boolean("pathstyle", false)
	fps, hasFPS := p.boolean("forcepathstyle", false)
	if hasPS && hasFPS && ps != fps {
		p.fail("forcepathstyle", "contradicts pathstyle: set only one")
	}
	c.pathStyle = ps || fps
	c.secure, _ = p.boolean("secure", true)
	c.skipVerify, _ = p.boolean("skipverify", false)
	c.encrypt, _ = p.boolean("encrypt", false)
	c.dualStack, _ = p.boolean("usedualstack", false)
	c.accelerate, _ = p.boolean("accelerate", false)
	if c.keyID != "" && !c.encrypt {
		// Fail closed: a KMS key without encrypt would store plaintext.
		p.fail("keyid", "is set but encrypt is not true: objects would be stored without SSE-KMS")
	}
	c.chunkSize = p.integer("chunksize", defaultS3ChunkSize, s3MinPartSize)
	// Capped so that copyRanges' merged last range stays a valid part.
	c.copyChunkSize = min(p.integer("multipartcopychunksize", defaultS3CopyChunkSize, s3MinPartSize), s3MaxCopyPartSize-s3MinPartSize)
	c.copyConcurrency = int(p.integer("multipartcopymaxconcurrency", defaultS3CopyConcurrency, 1))
	c.copyThreshold = min(p.integer("multipartcopythresholdsize", defaultS3CopyThreshold, 0), s3MaxCopyPartSize)
	c.maxRequestsPerSecond = int(p.integer("maxrequestspersecond", 0, 0))
	switch c.checksum {
	case "when_required", "when_supported":
	default:
		p.fail("checksum", "%q is not when_required or when_supported", c.checksum)
	}
	if strings.EqualFold(c.storageClass, "NONE") {
		c.storageClass = ""
	}
	if c.endpoint != "" {
		if !strings.Contains(c.endpoint, "://") {
			scheme := "https://"
			if !c.secure {
				scheme = "http://"
			}
			c.endpoint = scheme + c.endpoint
		}
		if u, err := url.Parse(c.endpoint); err != nil || u.Host == "" {
			p.fail("regionendpoint", "%q is not a URL like https://s3.example.com", c.endpoint)
		}
	}
	mode, err := parseS3LogLevel(p.str("loglevel", "off"))
	if err != nil {
		p.fail("loglevel", "%v", err)
	}
	c.logMode = mode
	if len(p.errs) > 0 {
		return c, errors.New(strings.Join(p.errs, "; "))
	}
	return c, nil
}

// parseS3LogLevel maps Distribution's loglevel words (comma-separated)
// to the SDK's log modes.
func parseS3LogLevel(s string) (aws.ClientLogMode, error) {
	var mode aws.ClientLogMode
	for _, w := range strings.Split(strings.ToLower(s), ",") {
		switch strings.TrimSpace(w) {
		case "", "off":
		case "debug":
			mode |= aws.LogRequest | aws.LogResponse
		case "debugwithsigning":
			mode |= aws.LogSigning
		case "debugwithhttpbody":
			mode |= aws.LogRequestWithBody | aws.LogResponseWithBody
		case "debugwithrequestretries":
			mode |= aws.LogRetries
		case "debugwithrequesterrors":
			mode |= aws.LogRequest | aws.LogResponse | aws.LogRetries
		case "debugwitheventstreambody":
			mode |= aws.LogRequestEventMessage | aws.LogResponseEventMessage
		default:
			return 0, fmt.Errorf("%q is not one of off, debug, debugwithsigning, debugwithhttpbody, debugwithrequestretries, debugwithrequesterrors, debugwitheventstreambody", w)
		}
	}
	return mode, nil
}

// NewS3 opens the bucket that storage.s3 settings name and checks that it
// answers (see Check), so a wrong setting stops the daemon at startup
// with one line naming it rather than failing every request later.
func NewS3(ctx context.Context, params map[string]any) (*S3, error) {
	return NewS3WithOptions(ctx, params, S3Options{})
}

// NewS3WithOptions is NewS3 with the settings path and logger given.
func NewS3WithOptions(ctx context.Context, params map[string]any, opts S3Options) (*S3, error) {
	d, err := newS3(ctx, params, opts)
	if err != nil {
		return nil, err
	}
	if err := d.startupCheck(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// noLimitKey marks contexts whose requests skip the request limiter
// (presigning sends nothing).
type noLimitKey struct{}

func newS3(ctx context.Context, params map[string]any, opts S3Options) (*S3, error) {
	setting := opts.Setting
	if setting == "" {
		setting = "storage.s3"
	}
	c, err := parseS3Config(params, setting)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}

	// A BuildableClient, so the SDK can add AWS_CA_BUNDLE's certificates
	// to it; skipverify is for test servers with self-signed certificates.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		// The SDK keeps 10 idle connections to a host. GC, migration and
		// a busy daemon run more requests at once than that, and then
		// every request over 10 dials a new connection and closes it:
		// in a GC of a 60-repository bucket, a sixth of the CPU time.
		tr.MaxIdleConns = s3MaxIdleConns
		tr.MaxIdleConnsPerHost = s3MaxIdleConns
	})
	if c.skipVerify {
		httpClient = httpClient.WithTransportOptions(func(tr *http.Transport) {
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{}
			}
			tr.TLSClientConfig.InsecureSkipVerify = true
		})
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithRegion(c.region),
		config.WithHTTPClient(httpClient),
		config.WithLogger(sdkLogger(logger)),
		config.WithClientLogMode(c.logMode),
		config.WithRetryer(func() aws.Retryer {
			// ratelimit.None: the default retry token bucket runs dry
			// under many concurrent requests ("retry quota exceeded")
			// and then fails requests that one more try would save.
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = s3MaxAttempts
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if c.accessKey != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.accessKey, c.secretKey, c.sessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("%s: loading the AWS configuration: %w", setting, err)
	}

	var apiOpts []func(*middleware.Stack) error
	if c.maxRequestsPerSecond > 0 {
		apiOpts = append(apiOpts, rateLimitMiddleware(rate.NewLimiter(rate.Limit(c.maxRequestsPerSecond), 1)))
	}
	if c.userAgent != "" {
		apiOpts = append(apiOpts, userAgentMiddleware(c.userAgent))
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if c.endpoint != "" {
			o.BaseEndpoint = aws.String(c.endpoint)
		}
		o.UsePathStyle = c.pathStyle
		o.EndpointOptions.DisableHTTPS = !c.secure
		o.UseAccelerate = c.accelerate
		if c.dualStack {
			o.EndpointOptions.UseDualStackEndpoint = aws.DualStackEndpointStateEnabled
		}
		// Several S3-compatible servers reject the CRC32 trailers the
		// SDK adds by default since service/s3 v1.73.
		if c.checksum == "when_supported" {
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenSupported
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported
		} else {
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
		// Servers without checksums would log a warning per GET.
		o.DisableLogOutputChecksumValidationSkipped = true
		o.APIOptions = append(o.APIOptions, apiOpts...)
	})
	d := &S3{
		client:          client,
		bucket:          c.bucket,
		chunkSize:       c.chunkSize,
		copyChunkSize:   c.copyChunkSize,
		copyConcurrency: c.copyConcurrency,
		copyThreshold:   c.copyThreshold,
		storageClass:    types.StorageClass(c.storageClass),
		acl:             types.ObjectCannedACL(c.objectACL),
		setting:         setting,
		region:          c.region,
		endpoint:        c.endpoint,
		sdkChecksums:    c.checksum == "when_supported",
	}
	d.presign = s3.NewPresignClient(client, s3.WithPresignExpires(s3RedirectExpiry))
	if c.rootDirectory != "" {
		d.prefix = c.rootDirectory + "/"
	}
	if c.encrypt {
		d.sse = types.ServerSideEncryptionAes256
		if c.keyID != "" {
			d.sse = types.ServerSideEncryptionAwsKms
			d.kmsKeyID = c.keyID
		}
	}
	return d, nil
}

// rateLimitMiddleware waits for the limiter before every attempt (retries
// included: they are requests to the server too). It runs after the
// retry middleware in the finalize step, so each attempt waits.
func rateLimitMiddleware(lim *rate.Limiter) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("regctlRequestLimit",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if ctx.Value(noLimitKey{}) == nil {
					if err := lim.Wait(ctx); err != nil {
						return middleware.FinalizeOutput{}, middleware.Metadata{}, err
					}
				}
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	}
}

// userAgentMiddleware appends useragent to the SDK's User-Agent.
func userAgentMiddleware(ua string) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Build.Add(middleware.BuildMiddlewareFunc("regctlUserAgent",
			func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				if req, ok := in.Request.(*smithyhttp.Request); ok {
					req.Header.Set("User-Agent", strings.TrimSpace(req.Header.Get("User-Agent")+" "+ua))
				}
				return next.HandleBuild(ctx, in)
			}), middleware.After)
	}
}

// sdkLogger sends the SDK's log lines to slog: warnings as warnings,
// the debug output loglevel asks for at info, since it was asked for.
func sdkLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		level := slog.LevelInfo
		if c == logging.Warn {
			level = slog.LevelWarn
		}
		l.Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "s3")
	})
}

// Name is the driver's name in config.yml.
func (d *S3) Name() string { return "s3" }

// Bucket is the bucket the driver stores into.
func (d *S3) Bucket() string { return d.bucket }

// startupCheck is Check with a deadline, so an endpoint that swallows
// packets fails the daemon's start instead of hanging it.
func (d *S3) startupCheck(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Two attempts, not five: a wrong endpoint should fail the start in
	// seconds, and a supervisor restarts the daemon anyway.
	few := func(o *s3.Options) { o.Retryer = retry.AddWithMaxAttempts(o.Retryer, 2) }
	if _, err := d.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &d.bucket}, few); err != nil {
		// HEAD answers carry no error code (a 403 could be wrong keys or
		// a policy, a 404 an unknown key id or a missing bucket): a GET
		// says which, so ask once more.
		if status(err) == 0 {
			return d.explain(err)
		}
		if _, lerr := d.listOne(ctx, few); lerr != nil {
			return d.explain(lerr)
		}
		return nil // HEAD refused, but the bucket lists: usable
	}
	if _, err := d.listOne(ctx, few); err != nil {
		return d.explain(err)
	}
	return nil
}

// Check lists one key under the root: it needs the credentials, the
// bucket, the region and the endpoint to be right, and the list
// permission. Run by periodic health checks; failures are one line
// naming the setting to look at.
func (d *S3) Check(ctx context.Context) error {
	if _, err := d.listOne(ctx); err != nil {
		return d.explain(err)
	}
	return nil
}

func (d *S3) listOne(ctx context.Context, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	in := &s3.ListObjectsV2Input{Bucket: &d.bucket, MaxKeys: aws.Int32(1)}
	if d.prefix != "" {
		in.Prefix = aws.String(d.prefix)
	}
	return d.client.ListObjectsV2(ctx, in, opts...)
}

// S3SettingError is a failure of the bucket check, naming the setting
// that is most likely wrong.
type S3SettingError struct {
	Setting string // "storage.s3.bucket", ...
	Msg     string
	Err     error
}

func (e *S3SettingError) Error() string { return e.Setting + ": " + e.Msg }
func (e *S3SettingError) Unwrap() error { return e.Err }

// explain turns an SDK error from the bucket check into one line naming
// the setting to fix.
func (d *S3) explain(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	at := func(key, format string, args ...any) error {
		return &S3SettingError{Setting: d.setting + "." + key, Msg: fmt.Sprintf(format, args...), Err: err}
	}
	where := d.endpoint
	if where == "" {
		where = "AWS S3 in region " + d.region
	}
	code := errorCode(err)
	switch code {
	case "InvalidAccessKeyId", "XAdminUserNotFound", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidSecurity", "AuthorizationHeaderMalformed":
		if code == "AuthorizationHeaderMalformed" && strings.Contains(strings.ToLower(err.Error()), "region") {
			return at("region", "%s rejected region %q for bucket %q (%s)", where, d.region, d.bucket, apiMessage(err))
		}
		return at("accesskey/secretkey", "%s rejected the credentials (%s): check the access key and secret key", where, code)
	case "AccessDenied", "AllAccessDisabled", "Forbidden":
		return at("accesskey/secretkey", "%s denied access to bucket %q (%s): check the keys, or that they may read and write this bucket", where, d.bucket, code)
	case "NoSuchBucket", "NotFound":
		return at("bucket", "bucket %q does not exist at %s", d.bucket, where)
	case "InvalidBucketName":
		return at("bucket", "%q is not a valid bucket name at %s", d.bucket, where)
	case "PermanentRedirect", "IllegalLocationConstraintException", "IncorrectEndpoint":
		return at("region", "bucket %q is not in region %q%s", d.bucket, d.region, bucketRegionHint(err))
	}
	switch s := status(err); {
	case s == http.StatusMovedPermanently || s == http.StatusTemporaryRedirect:
		return at("region", "bucket %q is not in region %q%s", d.bucket, d.region, bucketRegionHint(err))
	case s == http.StatusForbidden:
		return at("accesskey/secretkey", "%s denied access to bucket %q (403): check the keys, or that they may read and write this bucket", where, d.bucket)
	case s == http.StatusNotFound:
		return at("bucket", "bucket %q does not exist at %s", d.bucket, where)
	case s == http.StatusBadRequest && !validBucketName(d.bucket):
		// HEAD answers carry no error code: judge the name ourselves.
		return at("bucket", "%q is not a valid bucket name (3 to 63 lowercase letters, digits, dots and hyphens)", d.bucket)
	case s == http.StatusBadRequest && strings.Contains(strings.ToLower(err.Error()), "region"):
		return at("region", "%s rejected region %q for bucket %q", where, d.region, d.bucket)
	case s != 0:
		return at("regionendpoint", "%s answered %d %s for bucket %q", where, s, http.StatusText(s), d.bucket)
	}
	msg := err.Error()
	if strings.Contains(msg, "get credentials") || strings.Contains(msg, "retrieve credentials") || strings.Contains(msg, "refresh cached credentials") {
		return at("accesskey/secretkey", "no credentials: set accesskey and secretkey, or provide them through the environment, shared config or an IAM role")
	}
	var tlsErr *tls.CertificateVerificationError
	if errors.As(err, &tlsErr) {
		return at("regionendpoint", "%s: TLS certificate not trusted (%v); add its CA to AWS_CA_BUNDLE, or set skipverify for a test server", where, tlsErr.Err)
	}
	var netErr net.Error
	var sendErr *smithyhttp.RequestSendError
	if errors.As(err, &sendErr) || errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return at("regionendpoint", "cannot reach %s: %s", where, rootCause(err))
	}
	return at("regionendpoint", "checking bucket %q at %s: %s", d.bucket, where, rootCause(err))
}

// bucketRegionHint names the bucket's real region when the server said.
func bucketRegionHint(err error) string {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		if r := re.Response.Header.Get("X-Amz-Bucket-Region"); r != "" {
			return fmt.Sprintf(": it is in %q", r)
		}
	}
	return ""
}

// rootCause is the innermost error's text: the SDK's wrapping repeats
// the operation and request id, which the setting line does not need.
func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorMessage() != "" {
		return ae.ErrorMessage()
	}
	return errorCode(err)
}

// errorCode is the S3 error code of err, "" when there is none.
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// status is the HTTP status of a failed S3 call, 0 when none came.
func status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

// isNoKey reports whether err says the key (or upload) is not there, as
// opposed to a missing bucket, which is a configuration error.
func isNoKey(err error) bool {
	switch errorCode(err) {
	case "NoSuchKey", "NotFound", "NoSuchUpload":
		return true
	case "NoSuchBucket":
		return false
	}
	return status(err) == http.StatusNotFound
}

// fail turns an SDK error about p into the driver's error.
func (d *S3) fail(op, p string, err error) error {
	if isNoKey(err) {
		return NotFound(p)
	}
	return fmt.Errorf("s3: %s %s: %w", op, p, err)
}

// validBucketName applies S3's naming rules for new buckets.
func validBucketName(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-'
		if !ok {
			return false
		}
	}
	first, last := b[0], b[len(b)-1]
	return first != '.' && first != '-' && last != '.' && last != '-'
}

// FlatKeyspace marks S3 as one flat keyspace behind the network (see
// the FlatKeyspace interface).
func (d *S3) FlatKeyspace() {}
