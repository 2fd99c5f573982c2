package auth

import (
	"errors"
	"math/rand/v2"
	"time"
)

// Proactive refresh timing.
const (
	// refreshMargin is the least time before expiry a token is renewed,
	// unless that is more than half its life.
	refreshMargin = time.Minute
	// minProactiveLife is the shortest token life renewed ahead of time;
	// shorter-lived tokens are renewed when a request needs one, so a
	// server issuing seconds-long tokens cannot keep the refresher (and the
	// keychain) busy.
	minProactiveLife = 2 * time.Minute
	// retryMin and retryMax bound the wait after a failed refresh; it
	// doubles with each failure in a row.
	retryMin = 10 * time.Second
	retryMax = 5 * time.Minute
)

// refreshAt is when the proactive refresher renews sess: once 80% of its
// lifetime has passed or a minute before it expires, whichever is sooner,
// but not in the first half of a short token's life. Zero means never: no
// known expiry, or a life under minProactiveLife (renewed on use).
func (sess *session) refreshAt() time.Time {
	if sess.Expiry.IsZero() {
		return time.Time{}
	}
	life := sess.Expiry.Sub(sess.IssuedAt)
	if life < minProactiveLife {
		return time.Time{}
	}
	margin := min(max(life/5, refreshMargin), life/2)
	return sess.Expiry.Add(-margin)
}

// retryDelay is the wait after the n-th refresh failure in a row (n ≥ 1):
// exponential from retryMin to retryMax, with ±20% jitter so servers
// restarting together do not refresh in lockstep.
func retryDelay(n int) time.Duration {
	d := retryMax
	if n < 16 {
		d = min(retryMin<<(n-1), retryMax)
	}
	j := int64(d / 5)
	return d + time.Duration(rand.Int64N(2*j+1)-j)
}

// refreshLoop renews signed-in servers' tokens before they expire, so a
// call never waits on a refresh and a grant that has ended shows as "sign
// in again" before the person needs the server. It ends with Close.
func (s *Service) refreshLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		srv, sess, at := s.nextRefresh()
		var fire <-chan time.Time
		if srv != nil {
			timer.Reset(max(at.Sub(s.now()), 0))
			fire = timer.C
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-fire:
			s.refreshEarly(srv, sess)
		}
	}
}

// nextRefresh finds the session due soonest for a proactive refresh.
func (s *Service) nextRefresh() (*server, *session, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		next *server
		sess *session
		when time.Time
	)
	for _, srv := range s.servers {
		cur := srv.sess
		if cur == nil || (cur.RefreshToken == "" && !srv.cfg.Kind.machine()) {
			continue
		}
		at := cur.refreshAt()
		if at.IsZero() {
			continue
		}
		if srv.retryAt.After(at) {
			at = srv.retryAt
		}
		if next == nil || at.Before(when) {
			next, sess, when = srv, cur, at
		}
	}
	return next, sess, when
}

// refreshEarly renews sess ahead of its expiry, sharing a refresh under
// way. A failure that ends the grant has already set "sign in again" and
// told subscribers; any other is retried after a growing, jittered delay.
func (s *Service) refreshEarly(srv *server, sess *session) {
	_, err := s.refresh(s.ctx, srv, sess)
	if err == nil || s.ctx.Err() != nil || errors.Is(err, ErrSignInRequired) {
		return
	}
	s.mu.Lock()
	var wait time.Duration
	if srv.sess == sess {
		srv.failures++
		wait = retryDelay(srv.failures)
		srv.retryAt = s.now().Add(wait)
	}
	s.mu.Unlock()
	s.log.Warn("refreshing ahead of expiry failed; retrying later", "server", srv.id, "err", err, "retry_in", wait.Round(time.Second))
}
