// Package browser drives a real headless Chromium (Debian's, installed by devtools/stack) with
// chromedp, for tests that look at calstatus's pages the way an admin's browser does: follow the
// links, read what is shown, and keep a screenshot for review.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser is one headless Chromium.
type Browser struct {
	t   testing.TB
	ctx context.Context
	// Shots is where screenshots go (created on first use).
	Shots string
}

// ExecPath finds Chromium.
func ExecPath() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium on PATH: devtools/stack/stack.sh install puts Debian's chromium there")
}

// IgnoreCertificateErrors lets the browser follow links to the local Entra simulator, whose TLS
// certificate comes from a CA made for the test run.
var IgnoreCertificateErrors = chromedp.Flag("ignore-certificate-errors", true)

// Start launches a browser for the test; it is closed when the test ends. Screenshots go to
// shots (the test run keeps them for review); extra adds command line options.
func Start(t testing.TB, shots string, extra ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	path, err := ExecPath()
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1200, 900), chromedp.Flag("disable-gpu", true))
	opts = append(opts, extra...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	if _, err := chromedp.Run(ctx, chromedp.Title()); err != nil { // starts the browser (no timeout on this first run)
		cancel()
		cancelAlloc()
		t.Fatalf("starting Chromium (%s): %v", path, err)
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return &Browser{t: t, ctx: ctx, Shots: shots}
}

// Page is what the browser shows after loading or following something.
type Page struct {
	URL, Title, Text, HTML string
}

// Open loads url and returns the page.
func (b *Browser) Open(url string) Page {
	b.t.Helper()
	return b.run(chromedp.Navigate(url))
}

// Click clicks the first element matching the CSS selector and returns the page it leads to. A
// link to another origin that cannot be reached is fine: the page's URL says where it led.
func (b *Browser) Click(selector string) Page {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
		b.t.Fatalf("browser: clicking %s: %v", selector, err)
	}
	// The click may start a navigation (a form's POST and its redirect): read the page once the
	// new document stands.
	var last error
	for ctx.Err() == nil {
		if p, err := b.read(ctx); err == nil {
			return p
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("browser: after clicking %s: %v", selector, last)
	return Page{}
}

// WaitFor waits until an element matching the CSS selector is shown (after a click's navigation,
// say) and returns the page.
func (b *Browser) WaitFor(selector string) Page {
	b.t.Helper()
	return b.run(chromedp.WaitVisible(chromedp.CSS(selector)))
}

// Attribute returns an attribute of the first element matching the selector.
func (b *Browser) Attribute(selector, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(selector), name))
	if err != nil || !v.Exists {
		b.t.Fatalf("attribute %s of %s: %v (present %v)", name, selector, err, v.Exists)
	}
	return v.Value
}

// Screenshot saves the whole page as <Shots>/<name>.png.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG (lower is JPEG)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(b.Shots, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(b.Shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return path
}

func (b *Browser) run(action chromedp.Action[chromedp.Void]) Page {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, action); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	p, err := b.read(ctx)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return p
}

// read returns what the current document shows.
func (b *Browser) read(ctx context.Context) (Page, error) {
	var p Page
	err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS("body")))
	if err == nil {
		p.URL, err = chromedp.Run(ctx, chromedp.Location())
	}
	if err == nil {
		p.Title, err = chromedp.Run(ctx, chromedp.Title())
	}
	if err == nil {
		p.Text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	}
	if err == nil {
		p.HTML, err = chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	}
	p.Text = strings.TrimSpace(p.Text)
	return p, err
}

// String shows a page in test messages.
func (p Page) String() string { return fmt.Sprintf("%s %q: %.300s", p.URL, p.Title, p.Text) }
