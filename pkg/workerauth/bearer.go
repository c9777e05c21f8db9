package workerauth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MaxBearerTokenLength bounds a bearer token; GM's tokens are 43 characters.
const MaxBearerTokenLength = 512

// ParseBearer returns the token of the request's Authorization header, or "" when there is none.
// Anything but a single "Bearer <token>" header (scheme case-insensitive, RFC 7235's token68
// characters, at most MaxBearerTokenLength) is an error: a client that sends credentials gets
// them checked, never ignored.
func ParseBearer(header http.Header) (string, error) {
	values := header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", fmt.Errorf("%d Authorization headers, want one", len(values))
	}
	scheme, token, found := strings.Cut(values[0], " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", errors.New(`the Authorization header is not "Bearer <token>"`)
	}
	if token == "" || len(token) > MaxBearerTokenLength || !isToken68(token) {
		return "", errors.New("the bearer token is empty, too long or has characters a token cannot have")
	}
	return token, nil
}

// isToken68 reports whether s is RFC 7235's token68: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
// "+" / "/" ) *"=".
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
