// Command funchost runs a Functions app (custom handler) locally, like
// `func start` would:
//
//	funchost -app . -functions ./functions -handler ./calstatus -settings local.settings.json -http 127.0.0.1:7071
//
// It stops on SIGINT/SIGTERM, or when the handler process exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/calstatus/calstatus/devtools/funchost"
)

func main() {
	app := flag.String("app", ".", "app directory (holds host.json)")
	functions := flag.String("functions", "", "directory of <Function>/function.json folders (default: <app>/functions if it exists, else <app>)")
	handler := flag.String("handler", "", "custom handler executable (default: host.json customHandler.description.defaultExecutablePath, relative to -app)")
	settingsPath := flag.String("settings", "local.settings.json", "local.settings.json to load (relative paths are tried in the current directory, then in -app)")
	httpAddr := flag.String("http", "127.0.0.1:7071", "listen address for HTTP triggers and the admin API")
	noTimers := flag.Bool("no-timers", false, "do not fire timers on schedule (use POST /admin/functions/<name>)")
	flag.Parse()

	logger := log.New(os.Stderr, "", log.Ltime|log.Lmicroseconds)
	if err := run(logger, *app, *functions, *handler, *settingsPath, *httpAddr, *noTimers); err != nil {
		logger.Printf("funchost: %v", err)
		os.Exit(1)
	}
}

func run(logger *log.Logger, app, functions, handler, settingsPath, httpAddr string, noTimers bool) error {
	settings := map[string]string{}
	if settingsPath != "" {
		path := settingsPath
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !filepath.IsAbs(path) {
			path = filepath.Join(app, settingsPath)
		}
		loaded, err := funchost.LoadLocalSettings(path)
		switch {
		case err == nil:
			logger.Printf("funchost: loaded %d settings from %s", len(loaded), path)
			// Core Tools: the process environment wins over local.settings.json.
			for k, v := range loaded {
				if _, inEnv := os.LookupEnv(k); inEnv {
					logger.Printf("funchost: Skipping '%s' from local settings as it's already defined in current environment variables.", k)
					continue
				}
				settings[k] = v
			}
		case errors.Is(err, fs.ErrNotExist) && !isFlagSet("settings"):
			logger.Printf("funchost: no %s; using the process environment only", settingsPath)
		default:
			return fmt.Errorf("settings: %w", err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h, err := funchost.Start(ctx, funchost.Options{
		AppDir:        app,
		FunctionsDir:  functions,
		HandlerPath:   handler,
		Settings:      settings,
		HTTPAddr:      httpAddr,
		Logf:          logger.Printf,
		DisableTimers: noTimers,
	})
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		logger.Printf("funchost: signal received, shutting down")
		return h.Close()
	case <-h.HandlerDone():
		h.Close()
		return fmt.Errorf("custom handler exited: %v", h.HandlerErr())
	}
}

func isFlagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}
