package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	core "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/calstatus/calstatus/internal/logctx"
)

// ValuesPerFilter is how many values Graph takes in one /users $filter ("limited to 15
// expressions in the filter clause").
const ValuesPerFilter = 15

// The properties an address is looked up by: Mattermost's email may be a user's UPN or their mail.
const (
	byUPN  = "userPrincipalName"
	byMail = "mail"
)

// UserIDsResult is what LookupUserIDs learned.
type UserIDsResult struct {
	IDs      map[string]string // lower-cased email → object id, for the users Graph found (by UPN or mail)
	NotFound []string          // lower-cased emails Graph answered for but has no user for
	// Failures are the emails Graph could not answer for (throttled past the budget, "forbidden"
	// without User.ReadBasic.All, "invalid" for what is no address…); Email is the lower-cased email.
	Failures []Failure
	// Calls counts $batch calls made; Retries the lookups sent again; Throttled the lookups
	// answered 429 (a whole $batch answered 429 counts each of its lookups).
	Calls, Retries, Throttled int
}

// userQuery is one GET /users?$filter=<prop> in (…) for up to ValuesPerFilter addresses.
type userQuery struct {
	prop   string
	emails []string
	tries
	last Failure // why it was last sent in vain
}

// lookup is what a LookupUserIDs learned so far, by address (mu: its $batch calls answer at once).
type lookup struct {
	mu       sync.Mutex
	found    map[string]map[string]string // prop → email → object id
	answered map[string]int               // how many of the email's two queries Graph answered
	failed   map[string]Failure           // why a query of the email failed
}

// LookupUserIDs looks emails up in as few $batch calls as it can (filters of at most 15 values, 20
// per $batch): each address by userPrincipalName and by mail, in one round. A user found by mail
// wins over another found by UPN (the mail is the address Exchange knows the calendar by). What
// Graph cannot answer for is a Failure, a missing permission included; an error means the context
// ended or Entra ID refused the credential, and the result then holds the users found so far.
func (c *Client) LookupUserIDs(ctx context.Context, emails []string) (UserIDsResult, error) {
	res := UserIDsResult{IDs: make(map[string]string, len(emails))}
	var valid []string
	seen := make(map[string]bool, len(emails))
	for _, e := range emails {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case seen[e]:
		case !looksLikeAddress(e):
			res.Failures = append(res.Failures, Failure{Email: e, Class: "invalid", Message: "not an email address"})
		default:
			valid = append(valid, e)
		}
		seen[e] = true
	}
	slices.Sort(valid)
	st := &lookup{
		found:    map[string]map[string]string{byUPN: {}, byMail: {}},
		answered: make(map[string]int, len(valid)),
		failed:   map[string]Failure{},
	}
	var pending []*userQuery
	for chunk := range slices.Chunk(valid, ValuesPerFilter) {
		pending = append(pending, &userQuery{prop: byUPN, emails: chunk}, &userQuery{prop: byMail, emails: chunk})
	}
	for len(pending) > 0 {
		ready, waiting, earliest := due(pending, lookupBatchesAtOnce*RequestsPerBatch, func(*userQuery) time.Time { return c.throttle.until(usersHold) })
		if len(ready) == 0 {
			past, err := c.waitFor(ctx, earliest, coalesce)
			if past {
				for _, q := range pending {
					st.fail(q, gaveUp(q.last, earliest))
				}
				break
			}
			if err != nil {
				st.collect(valid, &res, false)
				return res, fmt.Errorf("graph: %d users not looked up: waiting to retry: %w", len(valid)-len(res.IDs), err)
			}
			continue
		}
		retry, pause, err := c.sendLookupBatches(ctx, ready, st, &res)
		if err != nil {
			st.collect(valid, &res, false)
			return res, fmt.Errorf("graph: %d users not looked up: %w", len(valid)-len(res.IDs), err)
		}
		pending = append(waiting, retry...)
		holdAll(pending, pause)
	}
	st.collect(valid, &res, true)
	return res, nil
}

// lookupBatchesAtOnce is how many $batch calls of lookups go out at once: a shard's 400 users are
// 54 queries, three $batch calls, which one after another would hold its presence call for three
// Graph round trips in the first cycle.
const lookupBatchesAtOnce = 4

// sendLookupBatches sends the queries in $batch calls of RequestsPerBatch, at once, and merges what
// they return as sendLookups does for one: the queries to try again, the latest Retry-After given
// to a whole batch, the first error.
func (c *Client) sendLookupBatches(ctx context.Context, qs []*userQuery, st *lookup, res *UserIDsResult) (retry []*userQuery, pause time.Time, fatal error) {
	type sent struct {
		retry  []*userQuery
		pause  time.Time
		err    error
		counts UserIDsResult
	}
	batches := slices.Collect(slices.Chunk(qs, RequestsPerBatch))
	out := make([]sent, len(batches))
	var wg sync.WaitGroup
	for i, b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].retry, out[i].pause, out[i].err = c.sendLookups(ctx, b, st, &out[i].counts)
		}()
	}
	wg.Wait()
	for _, o := range out {
		retry = append(retry, o.retry...)
		if o.pause.After(pause) {
			pause = o.pause
		}
		if fatal == nil {
			fatal = o.err
		}
		res.Calls, res.Retries, res.Throttled = res.Calls+o.counts.Calls, res.Retries+o.counts.Retries, res.Throttled+o.counts.Throttled
	}
	return retry, pause, fatal
}

// looksLikeAddress keeps what cannot be anyone's UPN or mail out of the filters.
func looksLikeAddress(e string) bool {
	local, domain, ok := strings.Cut(e, "@")
	return ok && local != "" && domain != "" && !strings.ContainsAny(e, " \t\r\n")
}

// sendLookups sends one $batch of queries and sorts its answers into st; queries to try again are
// returned. pause, when set, is the end of a Retry-After given to the whole batch. An error is the
// context's end or a refused credential.
func (c *Client) sendLookups(ctx context.Context, qs []*userQuery, st *lookup, res *UserIDsResult) (retry []*userQuery, pause time.Time, fatal error) {
	batch, byID, err := c.newLookupBatch(ctx, qs)
	if err != nil {
		return nil, time.Time{}, err
	}
	for _, q := range qs {
		if q.send() {
			res.Retries++
		}
	}
	res.Calls++
	subs, err := c.exchange(ctx, func(ctx context.Context) (httpAnswer, error) { return c.postBatch(ctx, batch) })
	if err != nil {
		return c.lookupBatchFailed(ctx, qs, err, st, res)
	}
	for _, sub := range subs {
		q := byID[sub.id]
		if q == nil {
			continue
		}
		delete(byID, sub.id)
		switch {
		case sub.ok() && sub.problem == "":
			if problem := st.read(q, sub.body); problem != "" {
				st.fail(q, malformedFailure(sub.status, problem, sub.raw))
			}
		case sub.ok() || sub.status == 0:
			// Graph answered, but not readably: retrying would get the same answer.
			st.fail(q, malformedFailure(sub.status, sub.problem, sub.raw))
		case sub.status == http.StatusTooManyRequests || sub.status >= 500:
			q.last = callFailure(sub.err())
			delay := c.backoff(q.attempts, sub.status, sub.retryAfter())
			if sub.status == http.StatusTooManyRequests {
				res.Throttled++
				c.throttle.holdMailbox(usersHold, time.Now().Add(delay))
			}
			if c.retryLater(&q.tries, sub.status, delay) {
				retry = append(retry, q)
			} else {
				st.fail(q, q.last)
			}
		default:
			f := callFailure(sub.err()) // 403: no User.ReadBasic.All, which no retry changes
			if f.Class == "unknown" {
				f.Detail = detail(sub.raw)
			}
			st.fail(q, f)
		}
	}
	// A query the batch did not answer is retried like a 5xx.
	for _, q := range byID {
		q.last = Failure{Class: "graph", Message: "no answer in the $batch"}
		if c.retryLater(&q.tries, 0, c.backoff(q.attempts, 0, 0)) {
			retry = append(retry, q)
		} else {
			st.fail(q, q.last)
		}
	}
	return retry, time.Time{}, nil
}

// lookupBatchFailed handles a $batch call that failed as a whole (network, no answer in time, 5xx,
// a 429 for the whole batch, an unreadable answer): every query goes back after the batch's
// Retry-After or a backoff, or fails once out of attempts.
func (c *Client) lookupBatchFailed(ctx context.Context, qs []*userQuery, err error, st *lookup, res *UserIDsResult) (retry []*userQuery, pause time.Time, fatal error) {
	if ctx.Err() != nil { // before the credential: a token not fetched for it fails as one
		return nil, time.Time{}, ctx.Err()
	}
	if cerr := credentialFailure(err); cerr != nil {
		return nil, time.Time{}, cerr
	}
	status, retryAfter := errorStatus(err)
	logctx.From(ctx, c.cfg.Log).Warn("graph user lookup batch failed", "status", status, "error", err.Error(), "lookups", len(qs), "attempt", qs[0].attempts)
	f := callFailure(err)
	if status != 0 && status != http.StatusTooManyRequests && status < 500 {
		for _, q := range qs {
			st.fail(q, f) // the $batch itself refused: no retry changes that
		}
		return nil, time.Time{}, nil
	}
	delay := c.backoff(qs[0].attempts, status, retryAfter) // one delay: they go out together again
	if status == http.StatusTooManyRequests {
		res.Throttled += len(qs)
		pause = time.Now().Add(delay)
		c.throttle.holdApp(pause)
	}
	for _, q := range qs {
		q.last = f
		if c.retryLater(&q.tries, status, delay) {
			retry = append(retry, q)
		} else {
			st.fail(q, f)
		}
	}
	return retry, pause, nil
}

// newLookupBatch builds the $batch with the SDK: one GET /users step per query, by the step ids
// the SDK gave them.
func (c *Client) newLookupBatch(ctx context.Context, qs []*userQuery) (core.BatchRequest, map[string]*userQuery, error) {
	b := core.NewBatchRequest(c.adapter)
	byID := make(map[string]*userQuery, len(qs))
	for _, q := range qs {
		filter := q.filter()
		info, err := users.NewUsersRequestBuilderInternal(map[string]string{"baseurl": c.base}, c.adapter).ToGetRequestInformation(ctx,
			&users.UsersRequestBuilderGetRequestConfiguration{QueryParameters: &users.UsersRequestBuilderGetQueryParameters{
				Filter: &filter,
				Select: []string{"id", byUPN, byMail},
			}})
		if err != nil {
			return nil, nil, fmt.Errorf("building users request: %w", err)
		}
		step, err := b.AddBatchRequestStep(*info)
		if err != nil {
			return nil, nil, fmt.Errorf("adding batch step: %w", err)
		}
		byID[*step.GetId()] = q
	}
	return b, byID, nil
}

// filter is the query's $filter: prop in ('a','b',…), quotes doubled as OData writes them.
func (q *userQuery) filter() string {
	quoted := make([]string, len(q.emails))
	for i, e := range q.emails {
		quoted[i] = "'" + strings.ReplaceAll(e, "'", "''") + "'"
	}
	return q.prop + " in (" + strings.Join(quoted, ",") + ")"
}

// read takes the users of a query's answer; problem says why the answer cannot be read.
func (st *lookup) read(q *userQuery, body []byte) (problem string) {
	var answer struct {
		Value []struct {
			ID                string `json:"id"`
			UserPrincipalName string `json:"userPrincipalName"`
			Mail              string `json:"mail"`
		} `json:"value"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return "users answer: " + err.Error()
	}
	if answer.Value == nil {
		return "users answer without a value"
	}
	asked := make(map[string]bool, len(q.emails))
	for _, e := range q.emails {
		asked[e] = true
	}
	found := map[string]string{}
	for _, u := range answer.Value {
		addr := strings.ToLower(u.UserPrincipalName)
		if q.prop == byMail {
			addr = strings.ToLower(u.Mail)
		}
		if !asked[addr] {
			continue
		}
		id := strings.ToLower(u.ID)
		if !objectIDShape.MatchString(id) {
			return fmt.Sprintf("user %s has id %q, not an object id", addr, u.ID)
		}
		found[addr] = id
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for addr, id := range found {
		st.found[q.prop][addr] = id
	}
	for _, e := range q.emails {
		st.answered[e]++
	}
	return ""
}

// fail records why the query's emails could not be looked up (the first reason an email met).
func (st *lookup) fail(q *userQuery, f Failure) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, e := range q.emails {
		if _, ok := st.failed[e]; !ok {
			st.failed[e] = f
		}
	}
}

// collect sorts the emails into res: found (by mail first), not found (both queries answered),
// failed. Before the end (done false) an email without an answer yet is left out.
func (st *lookup) collect(emails []string, res *UserIDsResult, done bool) {
	for _, e := range emails {
		switch {
		case st.found[byMail][e] != "":
			res.IDs[e] = st.found[byMail][e]
		case st.found[byUPN][e] != "":
			res.IDs[e] = st.found[byUPN][e]
		case st.answered[e] == 2:
			res.NotFound = append(res.NotFound, e)
		case done:
			f, ok := st.failed[e]
			if !ok {
				f = Failure{Class: "graph", Message: "not looked up"}
			}
			f.Email = e
			res.Failures = append(res.Failures, f)
		}
	}
}
