package auth

import "context"

type principalKey struct{}

// NewContext returns ctx carrying p, the principal of the request being
// served.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal NewContext put in ctx, and whether
// there is one. A request to a public route without a token has none.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok && p.Role != ""
}
