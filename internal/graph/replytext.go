package graph

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// plainText is the text a reader sees in an automatic reply: Outlook stores it as a whole HTML
// document, and Mattermost shows text. Line breaks and block ends become newlines, entities their
// characters; runs of whitespace one space; blank lines at most one. A message without markup is
// taken as text, its line breaks kept.
//
// It reads tokens rather than a parsed tree: text needs no tree, and html.Parse gives up on a
// message nesting more than 512 elements, which a tokenizer reads like any other.
func plainText(s string) string {
	if !hasMarkup(s) {
		return tidyLines(s)
	}
	var w textWriter
	z := html.NewTokenizer(strings.NewReader(s))
	// Nothing in the head shows, and what a browser moves out of it into the body (text, tags no
	// head holds) shows here too: so only the text of script, style, title and noscript is hidden,
	// wherever they are.
	var hidden atom.Atom // the element whose text is being read, not shown
	pre := 0             // inside <pre>, where the message's own line breaks count
	for {
		tt := z.Next()
		if tt == html.ErrorToken { // the end: a strings.Reader fails no other way
			return tidyLines(w.String())
		}
		name, _ := z.TagName()
		a := atom.Lookup(name)
		switch tt {
		case html.TextToken:
			switch {
			case hidden != 0:
			case pre > 0:
				w.write(string(z.Text()))
			default:
				// Outside <pre> a line break in the source is only whitespace.
				w.write(strings.ReplaceAll(string(z.Text()), "\n", " "))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			switch {
			case a == atom.Script || a == atom.Style || a == atom.Title || a == atom.Noscript:
				hidden = a // the tokenizer reads all up to its end tag as one text, even after <script/>
			case a == atom.Br:
				w.write("\n")
			case a == atom.Td || a == atom.Th:
				w.write(" ") // cells of a row stay apart
			case a == atom.Pre:
				pre++
				w.endLine()
			case blockEnds(a):
				w.endLine() // a block starts on its own line
			}
		case html.EndTagToken:
			switch {
			case a == hidden && a != 0:
				hidden = 0
			case a == atom.Br: // </br> is read as <br>, as browsers do
				w.write("\n")
			case a == atom.Pre:
				pre = max(pre-1, 0)
				w.endLine()
			case blockEnds(a):
				w.endLine()
			}
		}
	}
}

// blockEnds reports whether the end of element a ends a line of text.
func blockEnds(a atom.Atom) bool {
	switch a {
	case atom.P, atom.Div, atom.Li, atom.Tr, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6,
		atom.Blockquote, atom.Ul, atom.Ol, atom.Table, atom.Hr:
		return true
	}
	return false
}

// hasMarkup reports whether s holds a tag, comment or doctype: whether it is HTML rather than text
// that happens to hold a '<' or an '&'.
func hasMarkup(s string) bool {
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return false
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken, html.CommentToken, html.DoctypeToken:
			return true
		}
	}
}

// textWriter collects the text, knowing whether the current line has any yet.
type textWriter struct {
	strings.Builder
	inLine bool // text other than whitespace since the last newline
}

func (w *textWriter) write(s string) {
	w.WriteString(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		w.inLine, s = false, s[i+1:]
	}
	w.inLine = w.inLine || strings.TrimSpace(s) != ""
}

// endLine ends the line unless it has no text yet, so blocks in a row leave no blank line.
func (w *textWriter) endLine() {
	if w.inLine {
		w.write("\n")
	}
}

// tidyLines collapses each line's whitespace to single spaces and trims it, keeps at most one
// blank line in a row, and trims the whole.
func tidyLines(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		l = strings.Join(strings.Fields(l), " ")
		if l == "" && len(out) > 0 && out[len(out)-1] == "" {
			continue
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}
