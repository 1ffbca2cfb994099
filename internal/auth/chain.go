package auth

import (
	"context"
	"errors"
	"fmt"
)

// Chain authenticates a token by asking its sources in order: the first
// that knows the token decides, whether it accepts or rejects it. It is
// itself a Source and a Reloader.
//
// The order matters only for a token two sources could claim; serve puts
// the engine's run tokens first, then the config's sources in the order
// the config lists them.
type Chain struct {
	sources []Source
}

var (
	_ Source   = (*Chain)(nil)
	_ Reloader = (*Chain)(nil)
)

// NewChain returns a Chain of sources, asked in this order.
func NewChain(sources ...Source) *Chain {
	return &Chain{sources: sources}
}

// Len is the number of sources; a Chain without any knows no token.
func (c *Chain) Len() int { return len(c.sources) }

// Authenticate returns the principal the first source that knows token
// names. It returns ErrUnknownToken when no source knows it (or token is
// empty), and an error wrapping ErrRejected when the source that knows
// it refuses it. Any other error is a source that could not decide (a
// JWKS that cannot be fetched): the caller should answer "try again",
// not "no".
func (c *Chain) Authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrUnknownToken
	}
	for _, s := range c.sources {
		p, err := s.Authenticate(ctx, token)
		switch {
		case err == nil:
			if !p.Role.Valid() && p.Role != RoleRun {
				// A source bug must not grant an unknown role anything
				// (Allows would refuse it anyway); say so plainly.
				return Principal{}, fmt.Errorf("%w: source %s named role %q", ErrRejected, p.Source, p.Role)
			}
			return p, nil
		case errors.Is(err, ErrUnknownToken):
			continue
		default:
			return Principal{}, err
		}
	}
	return Principal{}, ErrUnknownToken
}

// Reload reloads every source that is a Reloader. A source whose reload
// fails keeps what it had; the errors of all are returned joined.
func (c *Chain) Reload(ctx context.Context) error {
	var errs []error
	for _, s := range c.sources {
		if r, ok := s.(Reloader); ok {
			if err := r.Reload(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
