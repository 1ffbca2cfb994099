package store

import "sync"

// Broadcast is the in-process side of a store's notifier: Wake tells
// every subscriber that new events may exist. A subscriber's channel
// holds one value, so wake-ups coalesce and Wake never blocks a writer,
// however slow the subscriber.
type Broadcast struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// Subscribe returns a channel that receives a value after each Wake
// (coalesced), and a function that ends the subscription.
func (b *Broadcast) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[chan struct{}]struct{}{}
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, ch)
			b.mu.Unlock()
		})
	}
}

// Wake tells every subscriber.
func (b *Broadcast) Wake() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- struct{}{}:
		default: // one is already pending: it stands for this one too
		}
	}
}

// WakeOne tells one subscriber, given the channel Subscribe returned.
func (b *Broadcast) WakeOne(ch <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.subs {
		if c == ch {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
}

// Len is the number of subscribers.
func (b *Broadcast) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
