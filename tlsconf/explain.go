package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The TLS misconfigurations Explain recognises. Each explained error wraps
// one of these and the original error (so status.Code still works on it).
var (
	// ErrServerNeedsTLS: a plaintext client reached a port that speaks TLS.
	ErrServerNeedsTLS = errors.New("server requires TLS")
	// ErrServerNotTLS: a TLS client reached a port that speaks plaintext.
	ErrServerNotTLS = errors.New("server does not use TLS")
	// ErrUnknownAuthority: a certificate is not signed by a CA the other
	// side trusts (the server's, by the client's CA, or the client's, by the
	// server's client CA).
	ErrUnknownAuthority = errors.New("certificate signed by an unknown authority")
	// ErrCertExpired: a certificate (either side's) has expired or is not
	// valid yet.
	ErrCertExpired = errors.New("certificate expired or not yet valid")
	// ErrClientCertRequired: the server requires a client certificate and
	// the client presented none.
	ErrClientCertRequired = errors.New("server requires a client certificate")
	// ErrBadCertificate: any other refused certificate, such as one that
	// does not cover the name dialled, or lacks the key usage it is put to.
	ErrBadCertificate = errors.New("certificate rejected")
)

// Explain turns a TLS failure, as a grpc-go client reports it (an RPC's
// status error, or a dial's handshake error), into a one-line error that
// wraps the matching sentinel above and the original error. Any other
// error, nil included, is returned unchanged, as is an error Explain has
// already explained.
//
// grpc-go flattens the transport's error into the status message, so most
// cases are recognised by the texts crypto/tls and crypto/x509 write; raw
// errors that still hold their x509 or tls types are matched by type first.
// ErrServerNeedsTLS is an inference: the server hung up before sending
// anything, which a TLS port does to a plaintext gRPC preface and a
// plaintext gRPC server never does (it sends its SETTINGS first).
//
// Server refusals of a client certificate under TLS 1.3 reach the client
// reliably only through ClientCredentials; with plain credentials.NewTLS
// they often arrive as a bare "broken pipe" or "connection reset", which
// Explain leaves alone.
func Explain(err error) error {
	if err == nil {
		return nil
	}
	var done *explained
	if errors.As(err, &done) {
		return err
	}
	if e := explainTyped(err); e != nil {
		return e
	}
	return explainText(err)
}

// explained is an error Explain classified: kind is the sentinel, msg the
// line shown, cause the original error.
type explained struct {
	kind  error
	msg   string
	cause error
}

func (e *explained) Error() string   { return e.msg }
func (e *explained) Unwrap() []error { return []error{e.kind, e.cause} }

func explain(kind error, cause error, format string, args ...any) error {
	return &explained{kind: kind, msg: kind.Error() + ": " + fmt.Sprintf(format, args...), cause: cause}
}

// explainTyped matches errors that still carry crypto/x509 and crypto/tls
// types (a tls.Dial's, or a handshake's before grpc-go flattens it).
func explainTyped(err error) error {
	var host x509.HostnameError
	if errors.As(err, &host) {
		return explain(ErrBadCertificate, err, "the server's certificate does not cover %q (%v)", host.Host, host)
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return explain(ErrUnknownAuthority, err, "the server's certificate is not signed by a CA this client trusts (%v)", unknown)
	}
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) {
		if invalid.Reason == x509.Expired {
			return explain(ErrCertExpired, err, "the server's certificate (%v)", invalid)
		}
		return explain(ErrBadCertificate, err, "the server's certificate (%v)", invalid)
	}
	var record tls.RecordHeaderError
	if errors.As(err, &record) {
		return explain(ErrServerNotTLS, err, "the server answered the TLS handshake in plaintext; connect without TLS or enable TLS on the server (%v)", record)
	}
	var verify *tls.CertificateVerificationError
	if errors.As(err, &verify) {
		return explain(ErrBadCertificate, err, "the server's certificate (%v)", verify.Err)
	}
	return nil
}

// hostnameForms are x509.HostnameError's texts; the group is the name the
// client checked the server's certificate against.
var hostnameForms = []*regexp.Regexp{
	regexp.MustCompile(`x509: certificate is valid for .*, not (\S+?)"?$`),
	regexp.MustCompile(`x509: certificate is not valid for any names, but wanted to match (\S+?)"?$`),
	regexp.MustCompile(`x509: cannot validate certificate for (\S+) because it doesn't contain any IP SANs`),
}

// explainText matches the texts grpc-go leaves in a status message. The
// server's alerts ("remote error: ...") come first: they are about the
// client's certificate and are the last thing that went wrong.
func explainText(err error) error {
	s := err.Error()
	d := detail(s)
	has := func(sub string) bool { return strings.Contains(s, sub) }
	switch {
	case has("remote error: tls: unknown certificate authority"):
		return explain(ErrUnknownAuthority, err, "the server does not trust the CA that signed this client's certificate (%s)", d)
	case has("remote error: tls: expired certificate"):
		return explain(ErrCertExpired, err, "the server refused this client's certificate as expired or not yet valid (%s)", d)
	case has("remote error: tls: certificate required"):
		return explain(ErrClientCertRequired, err, "none was presented (%s)", d)
	case has("remote error: tls: handshake failure"):
		// TLS 1.2 has no "certificate required" alert; a Go server sends
		// this one when the client presents no certificate, and otherwise
		// only when the two ends share no cipher suite or curve.
		return explain(ErrClientCertRequired, err, "most likely none was presented; TLS 1.2 does not say (%s)", d)
	case has("remote error: tls: bad certificate"), has("remote error: tls: unsupported certificate"),
		has("remote error: tls: certificate unknown"), has("remote error: tls: certificate revoked"):
		return explain(ErrBadCertificate, err, "the server refused this client's certificate (%s)", d)
	case has("x509: certificate signed by unknown authority"):
		return explain(ErrUnknownAuthority, err, "the server's certificate is not signed by a CA this client trusts (%s)", d)
	case has("x509: certificate has expired or is not yet valid"):
		return explain(ErrCertExpired, err, "the server's certificate (%s)", d)
	case has("first record does not look like a TLS handshake"):
		return explain(ErrServerNotTLS, err, "the server answered the TLS handshake in plaintext; connect without TLS or enable TLS on the server (%s)", d)
	case has("error reading server preface: EOF"), has("error reading server preface") && has("connection reset by peer"):
		return explain(ErrServerNeedsTLS, err, "the server hung up on this plaintext client without a word, as a TLS port does; configure the client's TLS (%s)", d)
	}
	for _, re := range hostnameForms {
		if m := re.FindStringSubmatch(s); m != nil {
			return explain(ErrBadCertificate, err, "the server's certificate does not cover %q (%s)", m[1], d)
		}
	}
	if has("tls: failed to verify certificate") {
		return explain(ErrBadCertificate, err, "the server's certificate (%s)", d)
	}
	return err
}

// detail is the innermost part of a (flattened) error text that crypto/tls
// or crypto/x509 wrote, without grpc-go's wrapping and quotes.
func detail(s string) string {
	for _, marker := range []string{"remote error: ", "x509: ", "tls: ", "error reading server preface: "} {
		if i := strings.Index(s, marker); i >= 0 {
			return strings.TrimRight(s[i:], `"`)
		}
	}
	return s
}
