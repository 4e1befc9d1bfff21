// Package bicepcheck checks the deployment's Bicep (infra/) where no Bicep compiler can be
// installed. Its tests parse every infra/**/*.bicep with tree-sitter-bicep (from npm, see
// parse.js) and fail on any syntax error, check that every file the Bicep loads at compile time
// (loadTextContent and friends) exists, and that the function app's app settings are exactly
// AppSettingNames.
//
// The package itself reads Bicep with a small tokenizer (comments, strings with interpolation,
// brackets): enough to find the function app's appSettings and the files the Bicep loads, not a
// Bicep parser.
package bicepcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// AppSettingNames are the app settings the deployment gives the function app, a contract with the
// code that reads them (main.go). The tests check that the appSettings of the function app in
// infra/main.bicep (and the modules it uses) are exactly these names: AZURE_MANAGED_IDENTITY and
// AZURE_CLIENT_CERTIFICATE are alternatives (only one is set on a given deployment), every other
// one is always set. The Functions host's own settings on Flex Consumption are the three
// AzureWebJobsStorage__* ones; FUNCTIONS_WORKER_RUNTIME is not accepted there.
var AppSettingNames = []string{
	"AzureWebJobsStorage__accountName",
	"AzureWebJobsStorage__credential",
	"AzureWebJobsStorage__clientId",
	"APPLICATIONINSIGHTS_CONNECTION_STRING",
	"APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
	"AZURE_TENANT_ID",
	"AZURE_CLIENT_ID",
	"AZURE_MANAGED_IDENTITY",
	"AZURE_CLIENT_CERTIFICATE",
	"MATTERMOST_URL",
	"MATTERMOST_TOKEN",
	"MATTERMOST_SLASH_TOKEN",
	"SYNC_SCHEDULE",
	"SYNC_LOOKAHEAD",
	"TENTATIVE_AS_BUSY",
	"SHOW_SUBJECT",
	"NOTIFY_USERS",
	"TIME_ZONE",
	"DRY_RUN",
	"SYNC_PAUSED",
	"LOG_LEVEL",
}

// AppSettings returns the names of the app settings of the function app (the resource of type
// Microsoft.Web/sites with an appSettings property) declared in bicepPath or in the local modules
// it uses, in the order they are written. Every entry of the appSettings array must name its
// setting with a string literal (`name: 'X'`); entries may come from variables of the same file
// (e.g. `cond ? settingA : settingB`), whose names are all returned. It is an error if no function
// app, or more than one, declares appSettings.
func AppSettings(bicepPath string) ([]string, error) {
	var found []siteSettings
	if err := walkModules(bicepPath, map[string]bool{}, func(f *bicepFile) error {
		sites, err := f.siteAppSettings()
		found = append(found, sites...)
		return err
	}); err != nil {
		return nil, err
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%s: no Microsoft.Web/sites resource with appSettings in it or its modules", bicepPath)
	case 1:
		return found[0].names, nil
	default:
		var where []string
		for _, s := range found {
			where = append(where, s.where)
		}
		return nil, fmt.Errorf("%s: more than one site declares appSettings: %s", bicepPath, strings.Join(where, ", "))
	}
}

// A FileLoad is a file a Bicep file reads at compile time.
type FileLoad struct {
	Bicep    string // the Bicep file
	Line     int    // line of the call
	Function string // loadTextContent, loadJsonContent, loadYamlContent or loadFileAsBase64
	Arg      string // the path as written
	Path     string // the path resolved against the Bicep file's folder
}

var loadFunctions = map[string]bool{
	"loadTextContent":  true,
	"loadJsonContent":  true,
	"loadYamlContent":  true,
	"loadFileAsBase64": true,
}

// FileLoads returns the files bicepPath loads with loadTextContent, loadJsonContent,
// loadYamlContent or loadFileAsBase64. A call whose first argument is not a string literal is an
// error.
func FileLoads(bicepPath string) ([]FileLoad, error) {
	f, err := readBicep(bicepPath)
	if err != nil {
		return nil, err
	}
	var loads []FileLoad
	for i, t := range f.toks {
		if t.kind != tokIdent || !loadFunctions[t.text] || !f.is(i+1, tokPunct, "(") {
			continue
		}
		arg, ok := f.literal(i + 2)
		if !ok {
			return nil, fmt.Errorf("%s:%d: %s needs a string literal path", bicepPath, t.line, t.text)
		}
		loads = append(loads, FileLoad{
			Bicep: bicepPath, Line: t.line, Function: t.text, Arg: arg,
			Path: filepath.Join(filepath.Dir(bicepPath), filepath.FromSlash(arg)),
		})
	}
	return loads, nil
}

// Modules returns the local files bicepPath uses as modules (registry and template spec modules
// are left out), resolved against its folder.
func Modules(bicepPath string) ([]string, error) {
	f, err := readBicep(bicepPath)
	if err != nil {
		return nil, err
	}
	return f.modules(), nil
}

type siteSettings struct {
	where string
	names []string
}

func walkModules(path string, seen map[string]bool, visit func(*bicepFile) error) error {
	clean := filepath.Clean(path)
	if seen[clean] {
		return nil
	}
	seen[clean] = true
	f, err := readBicep(clean)
	if err != nil {
		return err
	}
	if err := visit(f); err != nil {
		return err
	}
	for _, m := range f.modules() {
		if err := walkModules(m, seen, visit); err != nil {
			return err
		}
	}
	return nil
}

type bicepFile struct {
	path string
	toks []token
}

func readBicep(path string) (*bicepFile, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	toks, err := tokenize(string(src))
	if err != nil {
		return nil, fmt.Errorf("%s:%v", path, err)
	}
	return &bicepFile{path: path, toks: toks}, nil
}

func (f *bicepFile) is(i int, kind tokKind, text string) bool {
	return i >= 0 && i < len(f.toks) && f.toks[i].kind == kind && f.toks[i].text == text
}

// literal returns the value of the string literal at i (no interpolation).
func (f *bicepFile) literal(i int) (string, bool) {
	if i < 0 || i >= len(f.toks) || f.toks[i].kind != tokString || f.toks[i].interpolated {
		return "", false
	}
	return f.toks[i].value, true
}

func (f *bicepFile) modules() []string {
	var paths []string
	for i, t := range f.toks {
		if t.kind != tokIdent || t.text != "module" || i+2 >= len(f.toks) || f.toks[i+1].kind != tokIdent {
			continue
		}
		p, ok := f.literal(i + 2)
		if !ok || strings.HasPrefix(p, "br:") || strings.HasPrefix(p, "br/") || strings.HasPrefix(p, "ts:") || strings.HasPrefix(p, "ts/") {
			continue
		}
		paths = append(paths, filepath.Join(filepath.Dir(f.path), filepath.FromSlash(p)))
	}
	return paths
}

// siteAppSettings finds `resource X 'Microsoft.Web/sites@…' = … { … appSettings: <expr> … }`.
func (f *bicepFile) siteAppSettings() ([]siteSettings, error) {
	var out []siteSettings
	for i, t := range f.toks {
		if t.kind != tokIdent || t.text != "resource" || i+2 >= len(f.toks) || f.toks[i+1].kind != tokIdent {
			continue
		}
		typ, ok := f.literal(i + 2)
		if !ok || !strings.EqualFold(strings.SplitN(typ, "@", 2)[0], "Microsoft.Web/sites") || f.is(i+3, tokIdent, "existing") {
			continue
		}
		open := f.bodyStart(i + 3)
		if open < 0 {
			continue
		}
		end := f.matching(open)
		for j := open + 1; j < end; j++ {
			if !f.is(j, tokIdent, "appSettings") || !f.is(j+1, tokPunct, ":") {
				continue
			}
			from, to, err := f.valueExpr(j + 2)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: appSettings: %v", f.path, f.toks[j].line, err)
			}
			names, err := f.settingNames(from, to, map[string]bool{})
			if err != nil {
				return nil, err
			}
			out = append(out, siteSettings{where: fmt.Sprintf("%s:%d", f.path, f.toks[j].line), names: names})
		}
	}
	return out, nil
}

// bodyStart returns the index of the `{` opening a resource body, after `=` and an optional
// `if (…)` or `[for …:`; -1 if there is none.
func (f *bicepFile) bodyStart(i int) int {
	depth := 0
	for ; i < len(f.toks); i++ {
		t := f.toks[i]
		if t.kind != tokPunct {
			continue
		}
		switch t.text {
		case "(":
			depth++
		case ")":
			depth--
		case "{":
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// matching returns the index of the bracket closing the one at open (len(toks) if unbalanced).
func (f *bicepFile) matching(open int) int {
	depth := 0
	for i := open; i < len(f.toks); i++ {
		if f.toks[i].kind != tokPunct {
			continue
		}
		switch f.toks[i].text {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return len(f.toks)
}

// valueExpr delimits a property value starting at i: a bracketed literal, a function call, or a
// variable name. It returns the token range [from, to).
func (f *bicepFile) valueExpr(i int) (int, int, error) {
	if i >= len(f.toks) {
		return 0, 0, fmt.Errorf("no value")
	}
	t := f.toks[i]
	switch {
	case t.kind == tokPunct && (t.text == "[" || t.text == "(" || t.text == "{"):
		return i, f.matching(i) + 1, nil
	case t.kind == tokIdent && f.is(i+1, tokPunct, "("):
		return i, f.matching(i+1) + 1, nil
	case t.kind == tokIdent:
		return i, i + 1, nil
	}
	return 0, 0, fmt.Errorf("line %d: expected an array, a function call or a variable, found %q", t.line, t.text)
}

// varExpr returns the token range of the expression of `var name = …` declared at top level.
func (f *bicepFile) varExpr(name string) (int, int, bool) {
	depth := 0
	for i, t := range f.toks {
		if t.kind == tokPunct {
			switch t.text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				depth--
			}
			continue
		}
		if depth != 0 || t.kind != tokIdent || t.text != "var" || !f.is(i+1, tokIdent, name) || !f.is(i+2, tokPunct, "=") {
			continue
		}
		// The expression runs to the next top-level declaration or decorator.
		from, d := i+3, 0
		for j := from; j < len(f.toks); j++ {
			u := f.toks[j]
			if u.kind == tokPunct {
				switch u.text {
				case "(", "[", "{":
					d++
				case ")", "]", "}":
					d--
				case "@":
					if d == 0 {
						return from, j, true
					}
				}
				continue
			}
			if d == 0 && u.kind == tokIdent && topLevelKeywords[u.text] && j > from && u.line > f.toks[j-1].line {
				return from, j, true
			}
		}
		return from, len(f.toks), true
	}
	return 0, 0, false
}

var topLevelKeywords = map[string]bool{
	"var": true, "param": true, "resource": true, "module": true, "output": true, "type": true,
	"func": true, "targetScope": true, "metadata": true, "import": true, "extension": true,
	"provider": true, "using": true, "assert": true,
}

// settingNames collects `name: '<literal>'` in toks[from:to], following variables of the file.
func (f *bicepFile) settingNames(from, to int, following map[string]bool) ([]string, error) {
	var names []string
	for i := from; i < to; i++ {
		t := f.toks[i]
		if t.kind != tokIdent {
			continue
		}
		if t.text == "name" && f.is(i+1, tokPunct, ":") {
			v, ok := f.literal(i + 2)
			if !ok {
				return nil, fmt.Errorf("%s:%d: an app setting's name must be a string literal", f.path, t.line)
			}
			names = append(names, v)
			i += 2
			continue
		}
		if following[t.text] || f.is(i-1, tokPunct, ".") {
			continue
		}
		if vf, vt, ok := f.varExpr(t.text); ok {
			following[t.text] = true
			more, err := f.settingNames(vf, vt, following)
			delete(following, t.text)
			if err != nil {
				return nil, err
			}
			names = append(names, more...)
		}
	}
	return names, nil
}

// Tokens.

type tokKind int

const (
	tokIdent tokKind = iota
	tokString
	tokNumber
	tokPunct
)

type token struct {
	kind         tokKind
	text         string // identifier, number or punctuation; the raw literal for strings
	value        string // decoded value of a string without interpolation
	interpolated bool
	line         int
}

type lexer struct {
	src  string
	pos  int
	line int
}

func tokenize(src string) ([]token, error) {
	lx := &lexer{src: src, line: 1}
	var toks []token
	for {
		if err := lx.skipSpaceAndComments(); err != nil {
			return nil, err
		}
		if lx.pos >= len(lx.src) {
			return toks, nil
		}
		start, line := lx.pos, lx.line
		c := lx.src[lx.pos]
		switch {
		case strings.HasPrefix(lx.src[lx.pos:], "'''"):
			end := strings.Index(lx.src[lx.pos+3:], "'''")
			if end < 0 {
				return nil, fmt.Errorf("%d: unterminated multi-line string", line)
			}
			body := lx.src[lx.pos+3 : lx.pos+3+end]
			lx.advance(3 + end + 3)
			toks = append(toks, token{kind: tokString, text: lx.src[start:lx.pos], value: body, line: line})
		case c == '\'':
			value, interpolated, err := lx.singleQuoted()
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokString, text: lx.src[start:lx.pos], value: value, interpolated: interpolated, line: line})
		case c == '_' || unicode.IsLetter(rune(c)):
			for lx.pos < len(lx.src) && (lx.src[lx.pos] == '_' || unicode.IsLetter(rune(lx.src[lx.pos])) || unicode.IsDigit(rune(lx.src[lx.pos]))) {
				lx.pos++
			}
			toks = append(toks, token{kind: tokIdent, text: lx.src[start:lx.pos], line: line})
		case unicode.IsDigit(rune(c)):
			for lx.pos < len(lx.src) && (unicode.IsDigit(rune(lx.src[lx.pos])) || lx.src[lx.pos] == '.') {
				lx.pos++
			}
			toks = append(toks, token{kind: tokNumber, text: lx.src[start:lx.pos], line: line})
		default:
			lx.pos++
			toks = append(toks, token{kind: tokPunct, text: string(c), line: line})
		}
	}
}

func (lx *lexer) advance(n int) {
	lx.line += strings.Count(lx.src[lx.pos:lx.pos+n], "\n")
	lx.pos += n
}

func (lx *lexer) skipSpaceAndComments() error {
	for lx.pos < len(lx.src) {
		rest := lx.src[lx.pos:]
		switch {
		case rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\r' || rest[0] == '\n':
			lx.advance(1)
		case strings.HasPrefix(rest, "//"):
			end := strings.IndexByte(rest, '\n')
			if end < 0 {
				end = len(rest)
			}
			lx.advance(end)
		case strings.HasPrefix(rest, "/*"):
			end := strings.Index(rest[2:], "*/")
			if end < 0 {
				return fmt.Errorf("%d: unterminated comment", lx.line)
			}
			lx.advance(2 + end + 2)
		default:
			return nil
		}
	}
	return nil
}

// singleQuoted reads a '…' string at lx.pos: escapes, and ${…} interpolations (which may hold
// strings and braces of their own).
func (lx *lexer) singleQuoted() (string, bool, error) {
	line := lx.line
	lx.pos++ // opening quote
	var b strings.Builder
	interpolated := false
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		switch {
		case c == '\'':
			lx.pos++
			return b.String(), interpolated, nil
		case c == '\n':
			return "", false, fmt.Errorf("%d: unterminated string", line)
		case c == '\\' && lx.pos+1 < len(lx.src):
			e := lx.src[lx.pos+1]
			lx.pos += 2
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if lx.pos < len(lx.src) && lx.src[lx.pos] == '{' {
					end := strings.IndexByte(lx.src[lx.pos:], '}')
					if end < 0 {
						return "", false, fmt.Errorf("%d: bad \\u escape", line)
					}
					r, err := strconv.ParseUint(lx.src[lx.pos+1:lx.pos+end], 16, 32)
					if err != nil {
						return "", false, fmt.Errorf("%d: bad \\u escape", line)
					}
					b.WriteRune(rune(r))
					lx.pos += end + 1
				}
			default: // \' \\ \$
				b.WriteByte(e)
			}
		case strings.HasPrefix(lx.src[lx.pos:], "${"):
			interpolated = true
			lx.pos += 2
			if err := lx.skipInterpolation(); err != nil {
				return "", false, err
			}
		default:
			b.WriteByte(c)
			lx.pos++
		}
	}
	return "", false, fmt.Errorf("%d: unterminated string", line)
}

// skipInterpolation skips the expression of a ${…} up to and including its closing brace.
func (lx *lexer) skipInterpolation() error {
	depth := 1
	for lx.pos < len(lx.src) {
		if err := lx.skipSpaceAndComments(); err != nil {
			return err
		}
		if lx.pos >= len(lx.src) {
			break
		}
		switch c := lx.src[lx.pos]; {
		case c == '\'':
			if _, _, err := lx.singleQuoted(); err != nil {
				return err
			}
		case c == '{':
			depth++
			lx.pos++
		case c == '}':
			depth--
			lx.pos++
			if depth == 0 {
				return nil
			}
		default:
			lx.pos++
		}
	}
	return fmt.Errorf("%d: unterminated interpolation", lx.line)
}
