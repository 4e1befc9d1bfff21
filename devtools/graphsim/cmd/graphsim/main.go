// Command graphsim runs the local Microsoft Graph + Entra ID simulator (see package graphsim) as a
// separate process, e.g. for `make run`.
//
//	graphsim -addr 127.0.0.1:18443 -scenario devtools/graphsim/testdata/demo.json -ca-out /tmp/graphsim-ca.pem -v
//
// Clients trust the generated CA through SSL_CERT_FILE=<ca-out>, take tokens from
// AZURE_AUTHORITY_HOST=<url> (with instance discovery disabled) and call GRAPH_BASE_URL=<url>/v1.0.
// Faults and counters: GET/PUT/PATCH <url>/_sim/faults, GET <url>/_sim/stats; the token's roles:
// GET/PUT <url>/_sim/roles.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/calstatus/calstatus/devtools/graphsim"
)

func main() {
	var (
		addr           = flag.String("addr", "127.0.0.1:18443", "listen address (loopback only)")
		scenarioPath   = flag.String("scenario", "", "scenario JSON file (default: generated calendars for every address)")
		caOut          = flag.String("ca-out", "", "write the generated CA certificate (PEM) to this file")
		tenant         = flag.String("tenant", graphsim.DefaultTenantID, "tenant id")
		clientID       = flag.String("client-id", graphsim.DefaultClientID, "application (client) id")
		clientSecret   = flag.String("client-secret", graphsim.DefaultClientSecret, "client secret")
		batchLatency   = flag.Duration("batch-latency", 1200*time.Millisecond, "latency added to every $batch")
		requestLatency = flag.Duration("request-latency", 0, "latency added to every direct Graph request")
		concurrency    = flag.Int("mailbox-concurrency", 4, "concurrent requests per mailbox in the URL")
		rateLimit      = flag.Int("mailbox-rate-limit", 10000, "requests per mailbox per -mailbox-rate-window")
		rateWindow     = flag.Duration("mailbox-rate-window", 10*time.Minute, "window of -mailbox-rate-limit")
		faultsPath     = flag.String("faults", "", "initial faults JSON file (same format as PUT /_sim/faults)")
		shuffle        = flag.Bool("shuffle", true, "answer $batch sub-responses in random order")
		verbose        = flag.Bool("v", false, "log one line per $batch and per direct Graph request")
		roles          = flag.String("roles", "Calendars.ReadBasic.All", "application permissions in issued tokens, comma-separated (presence: add Presence.Read.All,User.ReadBasic.All)")
	)
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)

	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		log.Fatalf("graphsim: -addr: %v", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Fatalf("graphsim: -addr %s: only loopback addresses are allowed", *addr)
	}

	var sc *graphsim.Scenario
	if *scenarioPath != "" {
		if sc, err = graphsim.LoadScenario(*scenarioPath); err != nil {
			log.Fatalf("graphsim: %v", err)
		}
	}
	var faults graphsim.Faults
	if *faultsPath != "" {
		b, err := os.ReadFile(*faultsPath)
		if err != nil {
			log.Fatalf("graphsim: %v", err)
		}
		if err := json.Unmarshal(b, &faults); err != nil {
			log.Fatalf("graphsim: -faults: %v", err)
		}
	}
	faults.ShuffleBatchResponses = faults.ShuffleBatchResponses || *shuffle
	if faults.Seed == 0 {
		faults.Seed = time.Now().UnixNano()
	}
	faults.BatchLatency = graphsim.Duration(*batchLatency)
	faults.RequestLatency = graphsim.Duration(*requestLatency)

	s, err := graphsim.Start(graphsim.Config{
		Addr:               *addr,
		TenantID:           *tenant,
		ClientID:           *clientID,
		ClientSecret:       *clientSecret,
		Scenario:           sc,
		Faults:             faults,
		MailboxConcurrency: *concurrency,
		MailboxRateLimit:   *rateLimit,
		MailboxRateWindow:  *rateWindow,
		CAFile:             *caOut,
		Roles:              strings.FieldsFunc(*roles, func(r rune) bool { return r == ',' || r == ' ' }),
		Logf:               log.Printf,
		Verbose:            *verbose,
	})
	if err != nil {
		log.Fatalf("graphsim: %v", err)
	}
	fmt.Printf("graphsim listening on %s\n", s.URL())
	fmt.Printf("  AZURE_AUTHORITY_HOST=%s/\n  AZURE_TENANT_ID=%s\n  GRAPH_CLIENT_ID=%s\n  GRAPH_BASE_URL=%s\n", s.URL(), *tenant, *clientID, s.GraphURL())
	if *caOut != "" {
		fmt.Printf("  SSL_CERT_FILE=%s\n", *caOut)
	}
	fmt.Printf("  control: %s/_sim/stats  %s/_sim/faults\n", s.URL(), s.URL())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	st := s.Stats()
	log.Printf("graphsim: stopping: %d $batch, %d sub-requests, %d schedules, %d throttled, %d early retries, %d tokens",
		st.Requests["$batch"], st.SubRequests, st.SchedulesLookedUp, st.Throttled, st.EarlyRetries, st.TokensIssued)
	_ = s.Close()
}
