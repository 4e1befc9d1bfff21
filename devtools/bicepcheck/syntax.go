package bicepcheck

// A Bicep parser for the checks that need more than tokens: declarations (param, var, resource,
// module, output, …) with their decorators, and expressions (literals, objects, arrays, string
// interpolation, for-expressions, member and index access, calls, operators, lambdas). It follows
// the Bicep grammar closely enough for the files in infra/ and reports what it cannot read as an
// error with the file and line; tree-sitter-bicep (parse.js) remains the syntax check.

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Expr is a Bicep expression.
type Expr interface{ Line() int }

// StringExpr is a string literal; Exprs are its interpolations, between Parts
// (len(Parts) == len(Exprs)+1).
type StringExpr struct {
	At    int
	Parts []string
	Exprs []Expr
}

// IntExpr is an integer literal.
type IntExpr struct {
	At    int
	Value int64
}

// BoolExpr is true or false.
type BoolExpr struct {
	At    int
	Value bool
}

// NullExpr is null.
type NullExpr struct{ At int }

// IdentExpr is a reference to a symbol (parameter, variable, resource, module, loop variable,
// lambda parameter, or a namespace such as az and sys).
type IdentExpr struct {
	At   int
	Name string
}

// ObjectExpr is an object literal. Resources holds the child resources declared in a resource
// body.
type ObjectExpr struct {
	At        int
	Props     []*Property
	Spreads   []Expr
	Resources []*Decl
}

// Property is one key: value of an object literal. Key is the name; KeyExpr is set instead
// when the key is an interpolated string.
type Property struct {
	At      int
	Key     string
	KeyExpr *StringExpr
	Value   Expr
}

// ArrayExpr is an array literal; an item may be a *SpreadExpr.
type ArrayExpr struct {
	At    int
	Items []Expr
}

// ForExpr is [for Item in Iter: Body] or [for (Item, Index) in Iter: Body].
type ForExpr struct {
	At    int
	Item  string
	Index string
	Iter  Expr
	Body  Expr
}

// IfExpr is the `if (Cond) {…}` of a conditional resource or module.
type IfExpr struct {
	At   int
	Cond Expr
	Body Expr
}

// MemberExpr is X.Name (or X.?Name).
type MemberExpr struct {
	At   int
	X    Expr
	Name string
	Safe bool
}

// ChildExpr is X::Name, a nested resource.
type ChildExpr struct {
	At   int
	X    Expr
	Name string
}

// IndexExpr is X[Index] (or X[?Index]).
type IndexExpr struct {
	At    int
	X     Expr
	Index Expr
}

// CallExpr is Fn(Args…), Fn an *IdentExpr or a *MemberExpr (ns.f(), resource.listKeys()).
type CallExpr struct {
	At   int
	Fn   Expr
	Args []Expr
}

// UnaryExpr is !X or -X; Op "!" with Postfix is the non-null assertion X!.
type UnaryExpr struct {
	At      int
	Op      string
	X       Expr
	Postfix bool
}

// BinaryExpr is X Op Y.
type BinaryExpr struct {
	At   int
	Op   string
	X, Y Expr
}

// TernaryExpr is Cond ? Then : Else.
type TernaryExpr struct {
	At               int
	Cond, Then, Else Expr
}

// LambdaExpr is x => Body or (x, y) => Body.
type LambdaExpr struct {
	At     int
	Params []string
	Body   Expr
}

// ParenExpr is (X).
type ParenExpr struct {
	At int
	X  Expr
}

// SpreadExpr is ...X in an array or object.
type SpreadExpr struct {
	At int
	X  Expr
}

func (e *StringExpr) Line() int  { return e.At }
func (e *IntExpr) Line() int     { return e.At }
func (e *BoolExpr) Line() int    { return e.At }
func (e *NullExpr) Line() int    { return e.At }
func (e *IdentExpr) Line() int   { return e.At }
func (e *ObjectExpr) Line() int  { return e.At }
func (e *ArrayExpr) Line() int   { return e.At }
func (e *ForExpr) Line() int     { return e.At }
func (e *IfExpr) Line() int      { return e.At }
func (e *MemberExpr) Line() int  { return e.At }
func (e *ChildExpr) Line() int   { return e.At }
func (e *IndexExpr) Line() int   { return e.At }
func (e *CallExpr) Line() int    { return e.At }
func (e *UnaryExpr) Line() int   { return e.At }
func (e *BinaryExpr) Line() int  { return e.At }
func (e *TernaryExpr) Line() int { return e.At }
func (e *LambdaExpr) Line() int  { return e.At }
func (e *ParenExpr) Line() int   { return e.At }
func (e *SpreadExpr) Line() int  { return e.At }

// Literal returns the value of a string without interpolation.
func (e *StringExpr) Literal() (string, bool) {
	if len(e.Exprs) != 0 {
		return "", false
	}
	return e.Parts[0], true
}

// Prop returns the property of an object literal named key (Bicep property names are
// case-insensitive), or nil.
func (o *ObjectExpr) Prop(key string) *Property {
	for _, p := range o.Props {
		if p.KeyExpr == nil && strings.EqualFold(p.Key, key) {
			return p
		}
	}
	return nil
}

// FuncName returns the name of a call's function (f for f() and ns.f()) and the expression it is
// called on (nil for f(), ns for ns.f()).
func (c *CallExpr) FuncName() (string, Expr) {
	switch fn := c.Fn.(type) {
	case *IdentExpr:
		return fn.Name, nil
	case *MemberExpr:
		return fn.Name, fn.X
	}
	return "", nil
}

// Decl is a top-level declaration, or a resource declared in another resource's body.
type Decl struct {
	Kind       string // param, var, resource, module, output, targetScope, type, func, metadata, assert, import, extension
	Line       int
	Name       string
	Decorators []*CallExpr
	Type       *TypeSpec // param and output
	Ref        string    // resource: 'type@version' as written; module: the path
	Existing   bool      // resource … existing
	Value      Expr      // param default, var value, resource or module body, output value, targetScope
	Parent     *Decl     // a nested resource's enclosing resource
	Children   []*Decl   // resources declared in this resource's body
	File       *File
}

// Decorator returns the decorator named name (@name(…) or @sys.name(…)), or nil.
func (d *Decl) Decorator(name string) *CallExpr {
	for _, c := range d.Decorators {
		if n, ns := c.FuncName(); n == name && (ns == nil || isIdent(ns, "sys")) {
			return c
		}
	}
	return nil
}

// Secure reports whether a param or output has @secure().
func (d *Decl) Secure() bool { return d.Decorator("secure") != nil }

// TypeSpec is a param's or output's declared type, simplified.
type TypeSpec struct {
	Text     string   // the tokens as written, joined by spaces
	Kind     string   // string, int, bool, object, array, or "" when not one of those
	Literals []string // a union of string literals ('a' | 'b')
	Nullable bool     // T?
	Resource string   // output x resource 'type@version'
}

// File is a parsed Bicep file.
type File struct {
	Path  string
	Decls []*Decl
	// Disabled holds the diagnostic codes (linter rules, BCP…) a `#disable-next-line` directive
	// turns off, by the line they are off on; line 0 for `#disable-diagnostics` (the whole file).
	Disabled map[int][]string
}

// IsDisabled reports whether diagnostic code is turned off at line by a directive.
func (f *File) IsDisabled(code string, line int) bool {
	return contains(f.Disabled[line], code) || contains(f.Disabled[0], code)
}

// Find returns the top-level declaration of kind named name, or nil.
func (f *File) Find(kind, name string) *Decl {
	for _, d := range f.Decls {
		if d.Kind == kind && d.Name == name {
			return d
		}
	}
	return nil
}

// Symbol returns the top-level declaration named name that an identifier can refer to (param,
// var, resource, module, func, type), or nil.
func (f *File) Symbol(name string) *Decl {
	for _, d := range f.Decls {
		switch d.Kind {
		case "param", "var", "resource", "module", "func", "type":
			if d.Name == name {
				return d
			}
		}
	}
	return nil
}

// Resources returns every resource declaration, nested ones included, in source order.
func (f *File) Resources() []*Decl {
	var out []*Decl
	var walk func(ds []*Decl)
	walk = func(ds []*Decl) {
		for _, d := range ds {
			if d.Kind == "resource" {
				out = append(out, d)
				walk(d.Children)
			}
		}
	}
	walk(f.Decls)
	return out
}

// ParseFile reads and parses a Bicep file.
func ParseFile(path string) (*File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(path, string(src))
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Parse parses Bicep source; path names the file in errors.
func Parse(path, src string) (*File, error) {
	lx := &scanner{src: src, line: 1, disabled: map[int][]string{}}
	toks, err := lx.all()
	if err != nil {
		return nil, fmt.Errorf("%s:%v", path, err)
	}
	p := &parser{toks: toks, file: &File{Path: path, Disabled: lx.disabled}}
	if err := p.parseFile(); err != nil {
		return nil, fmt.Errorf("%s:%v", path, err)
	}
	return p.file, nil
}

// Lexer.

type lkind int

const (
	lEOF lkind = iota
	lIdent
	lString
	lInt
	lOp
)

type ltok struct {
	kind lkind
	text string // identifier, digits or operator
	str  *StringExpr
	line int
	nl   bool // a line break precedes the token
}

var operators = []string{"...", "=>", "==", "!=", "=~", "!~", "<=", ">=", "&&", "||", "??", "::", ".?",
	"{", "}", "[", "]", "(", ")", ",", ":", ".", "?", "!", "=", "<", ">", "+", "-", "*", "/", "%", "@", "|"}

type scanner struct {
	src      string
	pos      int
	line     int
	disabled map[int][]string
}

func (lx *scanner) all() ([]ltok, error) {
	toks, err := lx.tokens(false)
	if err != nil {
		return nil, err
	}
	return append(toks, ltok{kind: lEOF, line: lx.line, nl: true}), nil
}

// tokens lexes up to the end of the source, or (inInterpolation) up to the `}` closing a ${.
func (lx *scanner) tokens(inInterpolation bool) ([]ltok, error) {
	var toks []ltok
	depth := 0
	for {
		nl, err := lx.space()
		if err != nil {
			return nil, err
		}
		if lx.pos >= len(lx.src) {
			if inInterpolation {
				return nil, fmt.Errorf("%d: unterminated interpolation", lx.line)
			}
			return toks, nil
		}
		line := lx.line
		rest := lx.src[lx.pos:]
		c := rest[0]
		switch {
		case strings.HasPrefix(rest, "'''"):
			end := strings.Index(rest[3:], "'''")
			if end < 0 {
				return nil, fmt.Errorf("%d: unterminated multi-line string", line)
			}
			body := rest[3 : 3+end]
			// A line break right after the opening quotes is not part of the value.
			body = strings.TrimPrefix(strings.TrimPrefix(body, "\r"), "\n")
			lx.advance(3 + end + 3)
			toks = append(toks, ltok{kind: lString, str: &StringExpr{At: line, Parts: []string{body}}, line: line, nl: nl})
		case c == '\'':
			s, err := lx.str()
			if err != nil {
				return nil, err
			}
			toks = append(toks, ltok{kind: lString, str: s, line: line, nl: nl})
		case c == '_' || c < 0x80 && unicode.IsLetter(rune(c)):
			start := lx.pos
			for lx.pos < len(lx.src) && (lx.src[lx.pos] == '_' || lx.src[lx.pos] < 0x80 && (unicode.IsLetter(rune(lx.src[lx.pos])) || unicode.IsDigit(rune(lx.src[lx.pos])))) {
				lx.pos++
			}
			toks = append(toks, ltok{kind: lIdent, text: lx.src[start:lx.pos], line: line, nl: nl})
		case c >= '0' && c <= '9':
			start := lx.pos
			for lx.pos < len(lx.src) && lx.src[lx.pos] >= '0' && lx.src[lx.pos] <= '9' {
				lx.pos++
			}
			toks = append(toks, ltok{kind: lInt, text: lx.src[start:lx.pos], line: line, nl: nl})
		default:
			op := ""
			for _, o := range operators {
				if strings.HasPrefix(rest, o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("%d: unexpected character %q", line, c)
			}
			if inInterpolation {
				switch op {
				case "{":
					depth++
				case "}":
					if depth == 0 {
						lx.pos++
						return append(toks, ltok{kind: lEOF, line: line}), nil
					}
					depth--
				}
			}
			lx.pos += len(op)
			toks = append(toks, ltok{kind: lOp, text: op, line: line, nl: nl})
		}
	}
}

func (lx *scanner) advance(n int) {
	lx.line += strings.Count(lx.src[lx.pos:lx.pos+n], "\n")
	lx.pos += n
}

// space skips blanks and comments and reports whether they held a line break.
func (lx *scanner) space() (bool, error) {
	nl := false
	for lx.pos < len(lx.src) {
		rest := lx.src[lx.pos:]
		switch {
		case rest[0] == '\n':
			nl = true
			lx.advance(1)
		case rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\r':
			lx.pos++
		case strings.HasPrefix(rest, "//"):
			end := strings.IndexByte(rest, '\n')
			if end < 0 {
				end = len(rest)
			}
			lx.advance(end)
		case rest[0] == '#' && lx.disabled != nil:
			// #disable-next-line code… and #disable-diagnostics code…, alone on their line.
			end := strings.IndexByte(rest, '\n')
			if end < 0 {
				end = len(rest)
			}
			words := strings.Fields(strings.SplitN(rest[:end], "//", 2)[0])
			switch words[0] {
			case "#disable-next-line":
				lx.disabled[lx.line+1] = append(lx.disabled[lx.line+1], words[1:]...)
			case "#disable-diagnostics":
				lx.disabled[0] = append(lx.disabled[0], words[1:]...)
			default:
				return nl, fmt.Errorf("%d: unknown directive %s", lx.line, words[0])
			}
			lx.advance(end)
		case strings.HasPrefix(rest, "/*"):
			end := strings.Index(rest[2:], "*/")
			if end < 0 {
				return nl, fmt.Errorf("%d: unterminated comment", lx.line)
			}
			if strings.Contains(rest[:2+end], "\n") {
				nl = true
			}
			lx.advance(2 + end + 2)
		default:
			return nl, nil
		}
	}
	return nl, nil
}

// str reads a '…' string with escapes and ${…} interpolations.
func (lx *scanner) str() (*StringExpr, error) {
	s := &StringExpr{At: lx.line}
	lx.pos++
	var b strings.Builder
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		switch {
		case c == '\'':
			lx.pos++
			s.Parts = append(s.Parts, b.String())
			return s, nil
		case c == '\n':
			return nil, fmt.Errorf("%d: unterminated string", s.At)
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
			case '\\', '\'', '$':
				b.WriteByte(e)
			case 'u':
				end := strings.IndexByte(lx.src[lx.pos:], '}')
				if !strings.HasPrefix(lx.src[lx.pos:], "{") || end < 0 {
					return nil, fmt.Errorf("%d: bad \\u escape", lx.line)
				}
				r, err := strconv.ParseUint(lx.src[lx.pos+1:lx.pos+end], 16, 32)
				if err != nil {
					return nil, fmt.Errorf("%d: bad \\u escape", lx.line)
				}
				b.WriteRune(rune(r))
				lx.pos += end + 1
			default:
				return nil, fmt.Errorf("%d: unknown escape \\%c", lx.line, e)
			}
		case strings.HasPrefix(lx.src[lx.pos:], "${"):
			lx.pos += 2
			toks, err := lx.tokens(true)
			if err != nil {
				return nil, err
			}
			p := &parser{toks: toks, multiline: 1}
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			if p.peek().kind != lEOF {
				return nil, fmt.Errorf("%d: unexpected %s in interpolation", p.peek().line, p.peek().desc())
			}
			s.Parts = append(s.Parts, b.String())
			s.Exprs = append(s.Exprs, e)
			b.Reset()
		default:
			b.WriteByte(c)
			lx.pos++
		}
	}
	return nil, fmt.Errorf("%d: unterminated string", s.At)
}

func (t ltok) desc() string {
	switch t.kind {
	case lEOF:
		return "end of input"
	case lString:
		return "string"
	}
	return fmt.Sprintf("%q", t.text)
}

// Parser.

type parser struct {
	toks []ltok
	pos  int
	file *File
	// multiline > 0 inside parentheses, where line breaks do not end an expression.
	multiline int
}

func (p *parser) peek() ltok        { return p.toks[p.pos] }
func (p *parser) peekAt(n int) ltok { return p.toks[min(p.pos+n, len(p.toks)-1)] }
func (p *parser) next() ltok {
	t := p.toks[p.pos]
	if p.pos < len(p.toks)-1 {
		p.pos++
	}
	return t
}

func (p *parser) isOp(op string) bool { t := p.peek(); return t.kind == lOp && t.text == op }
func (p *parser) isIdent(name string) bool {
	t := p.peek()
	return t.kind == lIdent && t.text == name
}

func (p *parser) expect(op string) (ltok, error) {
	t := p.next()
	if t.kind != lOp || t.text != op {
		return t, fmt.Errorf("%d: expected %q, found %s", t.line, op, t.desc())
	}
	return t, nil
}

func (p *parser) ident() (ltok, error) {
	t := p.next()
	if t.kind != lIdent {
		return t, fmt.Errorf("%d: expected an identifier, found %s", t.line, t.desc())
	}
	return t, nil
}

// endOfStatement: the next token starts a new line (or the input ends).
func (p *parser) endOfStatement() error {
	if t := p.peek(); t.kind != lEOF && !t.nl {
		return fmt.Errorf("%d: unexpected %s after the declaration", t.line, t.desc())
	}
	return nil
}

func (p *parser) parseFile() error {
	for p.peek().kind != lEOF {
		var decorators []*CallExpr
		for p.isOp("@") {
			p.next()
			d, err := p.decorator()
			if err != nil {
				return err
			}
			decorators = append(decorators, d)
		}
		d, err := p.decl()
		if err != nil {
			return err
		}
		d.Decorators = decorators
		p.file.Decls = append(p.file.Decls, d)
		if d.Kind == "resource" {
			d.Children = p.childResources(d)
		}
		if err := p.endOfStatement(); err != nil {
			return err
		}
	}
	return nil
}

// childResources links the resources declared in d's body to d.
func (p *parser) childResources(d *Decl) []*Decl {
	body := ResourceBody(d.Value)
	if body == nil {
		return nil
	}
	for _, c := range body.Resources {
		c.Parent = d
		c.File = p.file
		c.Children = p.childResources(c)
	}
	return body.Resources
}

// ResourceBody returns the object literal of a resource or module body, through `if (…)` and
// `[for …: …]`; nil if it is not an object literal.
func ResourceBody(e Expr) *ObjectExpr {
	for {
		switch v := e.(type) {
		case *ObjectExpr:
			return v
		case *IfExpr:
			e = v.Body
		case *ForExpr:
			e = v.Body
		default:
			return nil
		}
	}
}

func (p *parser) decorator() (*CallExpr, error) {
	e, err := p.postfix()
	if err != nil {
		return nil, err
	}
	c, ok := e.(*CallExpr)
	if !ok {
		return nil, fmt.Errorf("%d: a decorator must be a function call", e.Line())
	}
	return c, nil
}

func (p *parser) decl() (*Decl, error) {
	t, err := p.ident()
	if err != nil {
		return nil, err
	}
	d := &Decl{Kind: t.text, Line: t.line, File: p.file}
	switch t.text {
	case "targetScope":
		if _, err := p.expect("="); err != nil {
			return nil, err
		}
		d.Value, err = p.expr()
		return d, err
	case "param":
		name, err := p.ident()
		if err != nil {
			return nil, err
		}
		d.Name = name.text
		if d.Type, err = p.typeSpec(); err != nil {
			return nil, err
		}
		if p.isOp("=") && !p.peek().nl {
			p.next()
			d.Value, err = p.expr()
		}
		return d, err
	case "output":
		name, err := p.ident()
		if err != nil {
			return nil, err
		}
		d.Name = name.text
		if p.isIdent("resource") {
			p.next()
			ref := p.next()
			if ref.kind != lString {
				return nil, fmt.Errorf("%d: expected the resource type of output %s", ref.line, d.Name)
			}
			lit, _ := ref.str.Literal()
			d.Type = &TypeSpec{Text: "resource '" + lit + "'", Resource: lit}
		} else if d.Type, err = p.typeSpec(); err != nil {
			return nil, err
		}
		if _, err := p.expect("="); err != nil {
			return nil, err
		}
		d.Value, err = p.expr()
		return d, err
	case "var", "metadata", "assert":
		name, err := p.ident()
		if err != nil {
			return nil, err
		}
		d.Name = name.text
		if p.peek().kind == lIdent { // var x type = … (typed variables)
			if _, err := p.typeSpec(); err != nil {
				return nil, err
			}
		}
		if _, err := p.expect("="); err != nil {
			return nil, err
		}
		d.Value, err = p.expr()
		return d, err
	case "resource", "module":
		name, err := p.ident()
		if err != nil {
			return nil, err
		}
		d.Name = name.text
		ref := p.next()
		if ref.kind != lString {
			return nil, fmt.Errorf("%d: expected the type or path of %s %s", ref.line, t.text, d.Name)
		}
		lit, ok := ref.str.Literal()
		if !ok {
			return nil, fmt.Errorf("%d: the type or path of %s %s cannot be interpolated", ref.line, t.text, d.Name)
		}
		d.Ref = lit
		if t.text == "resource" && p.isIdent("existing") {
			p.next()
			d.Existing = true
		}
		if _, err := p.expect("="); err != nil {
			return nil, err
		}
		d.Value, err = p.resourceValue()
		return d, err
	case "type":
		name, err := p.ident()
		if err != nil {
			return nil, err
		}
		d.Name = name.text
		if _, err := p.expect("="); err != nil {
			return nil, err
		}
		d.Type, err = p.typeSpec()
		return d, err
	case "func":
		name, err := p.ident()
		if err != nil {
			return nil, err
		}
		d.Name = name.text
		// func name(params) outputType => body
		if err := p.skipBalanced("=>"); err != nil {
			return nil, err
		}
		p.next()
		d.Value, err = p.expr()
		return d, err
	case "import", "extension", "provider", "using":
		// The rest of the line, with a balanced `with {…}` or `{…} from` clause.
		return d, p.skipLine()
	}
	return nil, fmt.Errorf("%d: unknown declaration %q", t.line, t.text)
}

// skipLine skips tokens to the end of the line, over brackets that span lines.
func (p *parser) skipLine() error {
	depth := 0
	for {
		t := p.peek()
		if t.kind == lEOF {
			return nil
		}
		if t.nl && depth == 0 {
			return nil
		}
		if t.kind == lOp {
			switch t.text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				depth--
			}
		}
		p.next()
	}
}

// skipBalanced skips tokens up to op at bracket depth 0 (not consumed).
func (p *parser) skipBalanced(op string) error {
	depth := 0
	for {
		t := p.peek()
		if t.kind == lEOF {
			return fmt.Errorf("%d: expected %q", t.line, op)
		}
		if t.kind == lOp {
			if depth == 0 && t.text == op {
				return nil
			}
			switch t.text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				depth--
			}
		}
		p.next()
	}
}

// typeSpec reads a type expression: up to `=` at bracket depth 0, or the end of the line.
func (p *parser) typeSpec() (*TypeSpec, error) {
	var words []string
	var literals []string
	onlyLiterals := true
	depth := 0
	start := p.pos
	for {
		t := p.peek()
		if t.kind == lEOF || depth == 0 && p.pos > start && t.nl {
			break
		}
		if depth == 0 && t.kind == lOp && t.text == "=" {
			break
		}
		if t.kind == lOp && t.text == "@" && depth == 0 {
			return nil, fmt.Errorf("%d: unexpected decorator in a type", t.line)
		}
		if t.kind == lOp {
			switch t.text {
			case "(", "[", "{", "<":
				depth++
			case ")", "]", "}", ">":
				depth--
			}
		}
		switch {
		case t.kind == lString:
			lit, ok := t.str.Literal()
			if !ok {
				return nil, fmt.Errorf("%d: a type cannot be an interpolated string", t.line)
			}
			literals = append(literals, lit)
			words = append(words, "'"+lit+"'")
		case t.kind == lOp && t.text == "|" && depth == 0:
			words = append(words, t.text)
		default:
			onlyLiterals = false
			words = append(words, t.text)
		}
		p.next()
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%d: expected a type", p.peek().line)
	}
	ts := &TypeSpec{Text: strings.Join(words, " ")}
	if words[len(words)-1] == "?" {
		ts.Nullable = true
		words = words[:len(words)-1]
	}
	switch {
	case onlyLiterals && len(literals) > 0:
		ts.Kind, ts.Literals = "string", literals
	case len(words) == 1 && (words[0] == "string" || words[0] == "int" || words[0] == "bool" || words[0] == "object" || words[0] == "array"):
		ts.Kind = words[0]
	case len(words) >= 3 && words[len(words)-2] == "[" && words[len(words)-1] == "]":
		ts.Kind = "array"
	case words[0] == "{":
		ts.Kind = "object"
	case words[0] == "[":
		ts.Kind = "array"
	}
	return ts, nil
}

// resourceValue: {…}, if (…) {…}, or [for …: …].
func (p *parser) resourceValue() (Expr, error) {
	t := p.peek()
	if t.kind == lIdent && t.text == "if" {
		p.next()
		if _, err := p.expect("("); err != nil {
			return nil, err
		}
		p.multiline++
		cond, err := p.expr()
		p.multiline--
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(")"); err != nil {
			return nil, err
		}
		body, err := p.primary()
		if err != nil {
			return nil, err
		}
		if _, ok := body.(*ObjectExpr); !ok {
			return nil, fmt.Errorf("%d: expected an object after if (…)", body.Line())
		}
		return &IfExpr{At: t.line, Cond: cond, Body: body}, nil
	}
	return p.expr()
}

// Expressions, lowest precedence first: ternary, ??, ||, &&, equality, relational, additive,
// multiplicative, unary, postfix.

var binaryLevels = [][]string{
	{"??"},
	{"||"},
	{"&&"},
	{"==", "!=", "=~", "!~"},
	{"<", "<=", ">", ">="},
	{"+", "-"},
	{"*", "/", "%"},
}

func (p *parser) expr() (Expr, error) {
	if lam, ok, err := p.lambda(); ok || err != nil {
		return lam, err
	}
	cond, err := p.binary(0)
	if err != nil {
		return nil, err
	}
	if !p.isOp("?") || !p.continues() {
		return cond, nil
	}
	q := p.next()
	then, err := p.expr()
	if err != nil {
		return nil, err
	}
	if !p.continues() {
		return nil, fmt.Errorf("%d: expected \":\" of the conditional on the same line", p.peek().line)
	}
	if _, err := p.expect(":"); err != nil {
		return nil, err
	}
	els, err := p.expr()
	if err != nil {
		return nil, err
	}
	return &TernaryExpr{At: q.line, Cond: cond, Then: then, Else: els}, nil
}

// continues: the next token may continue the current expression (it is on the same line, or we
// are inside parentheses).
func (p *parser) continues() bool { return p.multiline > 0 || !p.peek().nl }

func (p *parser) binary(level int) (Expr, error) {
	if level == len(binaryLevels) {
		return p.unary()
	}
	x, err := p.binary(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != lOp || !p.continues() || !contains(binaryLevels[level], t.text) {
			return x, nil
		}
		p.next()
		y, err := p.binary(level + 1)
		if err != nil {
			return nil, err
		}
		x = &BinaryExpr{At: t.line, Op: t.text, X: x, Y: y}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *parser) unary() (Expr, error) {
	t := p.peek()
	if t.kind == lOp && (t.text == "!" || t.text == "-") {
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &UnaryExpr{At: t.line, Op: t.text, X: x}, nil
	}
	return p.postfix()
}

func (p *parser) postfix() (Expr, error) {
	x, err := p.primary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != lOp || t.nl && p.multiline == 0 {
			return x, nil
		}
		switch t.text {
		case ".", ".?":
			p.next()
			name, err := p.ident()
			if err != nil {
				return nil, err
			}
			x = &MemberExpr{At: name.line, X: x, Name: name.text, Safe: t.text == ".?"}
		case "::":
			p.next()
			name, err := p.ident()
			if err != nil {
				return nil, err
			}
			x = &ChildExpr{At: name.line, X: x, Name: name.text}
		case "[":
			p.next()
			if p.isOp("?") {
				p.next()
			}
			p.multiline++
			idx, err := p.expr()
			p.multiline--
			if err != nil {
				return nil, err
			}
			if _, err := p.expect("]"); err != nil {
				return nil, err
			}
			x = &IndexExpr{At: t.line, X: x, Index: idx}
		case "(":
			args, err := p.args()
			if err != nil {
				return nil, err
			}
			x = &CallExpr{At: t.line, Fn: x, Args: args}
		case "!":
			p.next()
			x = &UnaryExpr{At: t.line, Op: "!", X: x, Postfix: true}
		default:
			return x, nil
		}
	}
}

func (p *parser) args() ([]Expr, error) {
	if _, err := p.expect("("); err != nil {
		return nil, err
	}
	p.multiline++
	defer func() { p.multiline-- }()
	var args []Expr
	for !p.isOp(")") {
		a, err := p.expr()
		if err != nil {
			return nil, err
		}
		args = append(args, a)
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	if _, err := p.expect(")"); err != nil {
		return nil, err
	}
	return args, nil
}

// lambda parses `x => e` or `(x, y) => e` if that is what comes next.
func (p *parser) lambda() (Expr, bool, error) {
	t := p.peek()
	var params []string
	switch {
	case t.kind == lIdent && p.peekAt(1).kind == lOp && p.peekAt(1).text == "=>":
		params = []string{t.text}
		p.pos += 2
	case t.kind == lOp && t.text == "(":
		i := 1
		var names []string
		for {
			u := p.peekAt(i)
			if u.kind == lOp && u.text == ")" {
				break
			}
			if u.kind != lIdent {
				return nil, false, nil
			}
			names = append(names, u.text)
			i++
			if v := p.peekAt(i); v.kind == lOp && v.text == "," {
				i++
			}
		}
		if v := p.peekAt(i + 1); v.kind != lOp || v.text != "=>" {
			return nil, false, nil
		}
		params = names
		p.pos += i + 2
	default:
		return nil, false, nil
	}
	body, err := p.expr()
	if err != nil {
		return nil, true, err
	}
	return &LambdaExpr{At: t.line, Params: params, Body: body}, true, nil
}

func (p *parser) primary() (Expr, error) {
	t := p.peek()
	switch t.kind {
	case lString:
		p.next()
		return t.str, nil
	case lInt:
		p.next()
		v, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%d: bad integer %s", t.line, t.text)
		}
		return &IntExpr{At: t.line, Value: v}, nil
	case lIdent:
		p.next()
		switch t.text {
		case "true", "false":
			return &BoolExpr{At: t.line, Value: t.text == "true"}, nil
		case "null":
			return &NullExpr{At: t.line}, nil
		}
		return &IdentExpr{At: t.line, Name: t.text}, nil
	case lOp:
		switch t.text {
		case "(":
			p.next()
			p.multiline++
			x, err := p.expr()
			p.multiline--
			if err != nil {
				return nil, err
			}
			if _, err := p.expect(")"); err != nil {
				return nil, err
			}
			return &ParenExpr{At: t.line, X: x}, nil
		case "{":
			return p.object()
		case "[":
			return p.array()
		}
	}
	return nil, fmt.Errorf("%d: unexpected %s", t.line, t.desc())
}

// items parses the items of an array or object literal up to the closing bracket: separated by
// line breaks or commas.
func (p *parser) items(closing string, item func() error) error {
	saved := p.multiline
	p.multiline = 0
	defer func() { p.multiline = saved }()
	for {
		if p.isOp(closing) {
			p.next()
			return nil
		}
		if p.peek().kind == lEOF {
			return fmt.Errorf("%d: expected %q", p.peek().line, closing)
		}
		if err := item(); err != nil {
			return err
		}
		switch {
		case p.isOp(","):
			p.next()
		case p.isOp(closing), p.peek().nl:
		default:
			return fmt.Errorf("%d: unexpected %s (a new line, a comma or %q expected)", p.peek().line, p.peek().desc(), closing)
		}
	}
}

func (p *parser) object() (Expr, error) {
	open, _ := p.expect("{")
	o := &ObjectExpr{At: open.line}
	err := p.items("}", func() error {
		t := p.peek()
		for p.isOp("@") { // decorators (on nested resources, e.g. @batchSize)
			p.next()
			if _, err := p.decorator(); err != nil {
				return err
			}
			t = p.peek()
		}
		switch {
		case t.kind == lOp && t.text == "...":
			p.next()
			x, err := p.expr()
			if err != nil {
				return err
			}
			o.Spreads = append(o.Spreads, &SpreadExpr{At: t.line, X: x})
			return nil
		case t.kind == lIdent && t.text == "resource" && p.peekAt(1).kind == lIdent && p.peekAt(2).kind == lString:
			d, err := p.decl()
			if err != nil {
				return err
			}
			o.Resources = append(o.Resources, d)
			return nil
		}
		prop := &Property{At: t.line}
		switch t.kind {
		case lIdent:
			prop.Key = t.text
		case lString:
			if lit, ok := t.str.Literal(); ok {
				prop.Key = lit
			} else {
				prop.KeyExpr = t.str
			}
		default:
			return fmt.Errorf("%d: expected a property name, found %s", t.line, t.desc())
		}
		p.next()
		if _, err := p.expect(":"); err != nil {
			return err
		}
		v, err := p.expr()
		if err != nil {
			return err
		}
		prop.Value = v
		o.Props = append(o.Props, prop)
		return nil
	})
	return o, err
}

func (p *parser) array() (Expr, error) {
	open, _ := p.expect("[")
	if p.isIdent("for") {
		return p.forExpr(open.line)
	}
	a := &ArrayExpr{At: open.line}
	err := p.items("]", func() error {
		if t := p.peek(); t.kind == lOp && t.text == "..." {
			p.next()
			x, err := p.expr()
			if err != nil {
				return err
			}
			a.Items = append(a.Items, &SpreadExpr{At: t.line, X: x})
			return nil
		}
		x, err := p.expr()
		if err != nil {
			return err
		}
		a.Items = append(a.Items, x)
		return nil
	})
	return a, err
}

// forExpr parses `for x in iter: body]` after the `[`.
func (p *parser) forExpr(line int) (Expr, error) {
	p.next() // for
	f := &ForExpr{At: line}
	if p.isOp("(") {
		p.next()
		item, err := p.ident()
		if err != nil {
			return nil, err
		}
		f.Item = item.text
		if _, err := p.expect(","); err != nil {
			return nil, err
		}
		idx, err := p.ident()
		if err != nil {
			return nil, err
		}
		f.Index = idx.text
		if _, err := p.expect(")"); err != nil {
			return nil, err
		}
	} else {
		item, err := p.ident()
		if err != nil {
			return nil, err
		}
		f.Item = item.text
	}
	if t, err := p.ident(); err != nil || t.text != "in" {
		return nil, fmt.Errorf("%d: expected \"in\" in the for-expression", t.line)
	}
	saved := p.multiline
	p.multiline = 1
	iter, err := p.expr()
	p.multiline = saved
	if err != nil {
		return nil, err
	}
	f.Iter = iter
	if _, err := p.expect(":"); err != nil {
		return nil, err
	}
	if f.Body, err = p.resourceValue(); err != nil {
		return nil, err
	}
	if _, err := p.expect("]"); err != nil {
		return nil, err
	}
	return f, nil
}

func isIdent(e Expr, name string) bool {
	id, ok := e.(*IdentExpr)
	return ok && id.Name == name
}

// Walk calls visit for e and every expression in it (interpolations, items, properties, nested
// resource bodies), depth first; visit returns false to skip an expression's children.
func Walk(e Expr, visit func(Expr) bool) {
	if e == nil || !visit(e) {
		return
	}
	switch v := e.(type) {
	case *StringExpr:
		for _, x := range v.Exprs {
			Walk(x, visit)
		}
	case *ObjectExpr:
		for _, pr := range v.Props {
			if pr.KeyExpr != nil {
				Walk(pr.KeyExpr, visit)
			}
			Walk(pr.Value, visit)
		}
		for _, s := range v.Spreads {
			Walk(s, visit)
		}
		for _, r := range v.Resources {
			for _, d := range r.Decorators {
				Walk(d, visit)
			}
			Walk(r.Value, visit)
		}
	case *ArrayExpr:
		for _, x := range v.Items {
			Walk(x, visit)
		}
	case *ForExpr:
		Walk(v.Iter, visit)
		Walk(v.Body, visit)
	case *IfExpr:
		Walk(v.Cond, visit)
		Walk(v.Body, visit)
	case *MemberExpr:
		Walk(v.X, visit)
	case *ChildExpr:
		Walk(v.X, visit)
	case *IndexExpr:
		Walk(v.X, visit)
		Walk(v.Index, visit)
	case *CallExpr:
		Walk(v.Fn, visit)
		for _, a := range v.Args {
			Walk(a, visit)
		}
	case *UnaryExpr:
		Walk(v.X, visit)
	case *BinaryExpr:
		Walk(v.X, visit)
		Walk(v.Y, visit)
	case *TernaryExpr:
		Walk(v.Cond, visit)
		Walk(v.Then, visit)
		Walk(v.Else, visit)
	case *LambdaExpr:
		Walk(v.Body, visit)
	case *ParenExpr:
		Walk(v.X, visit)
	case *SpreadExpr:
		Walk(v.X, visit)
	}
}

// ParseDir parses every *.bicep file under dir, in lexical order of their paths.
func ParseDir(dir string) ([]*File, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".bicep") {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var files []*File
	for _, p := range paths {
		f, err := ParseFile(p)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}
