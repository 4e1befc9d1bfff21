package graph

import (
	"strings"
	"testing"
)

// outlookReply is an automatic reply as Outlook on the web stores it and Graph gives it.
const outlookReply = "<html>\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n" +
	"<style type=\"text/css\" style=\"display:none;\"> P {margin-top:0;margin-bottom:0;} </style>\r\n</head>\r\n" +
	"<body dir=\"ltr\">\r\n" +
	"<div style=\"font-family: Calibri, Arial, Helvetica, sans-serif; font-size: 12pt; color: rgb(0, 0, 0);\">\r\n" +
	"I'm out of the office until Monday 8 December.<br>\r\n</div>\r\n" +
	"<div style=\"font-family: Calibri, Arial, Helvetica, sans-serif; font-size: 12pt; color: rgb(0, 0, 0);\">For anything urgent, contact Sam &amp; Alex.</div>\r\n" +
	"</body>\r\n</html>\r\n"

func TestPlainText(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"outlook", outlookReply, "I'm out of the office until Monday 8 December.\nFor anything urgent, contact Sam & Alex."},
		{"outlook blank line", `<div>Away.</div><div><br></div><div>Back Monday.</div>`, "Away.\n\nBack Monday."},
		{"plain text", "Out until Monday.\r\n\r\n\r\nAsk  Sam\t(x1234)  or Alex.  ", "Out until Monday.\n\nAsk Sam (x1234) or Alex."},
		{"plain text with < and &", "Tom & Jerry <3, a < b, R&D &amp; co", "Tom & Jerry <3, a < b, R&D &amp; co"},
		{"entities", "<p>Sam&nbsp;&amp;&nbsp;Alex &lt;team&gt; &eacute;t&eacute; &#8211; &#x263A;</p>", "Sam & Alex <team> été – ☺"},
		{"nbsp runs", "<p>a&nbsp;&nbsp;&nbsp; b</p>", "a b"},
		{"inline", "<p>Back on <b>Monday</b>, <a href=\"https://x\">see</a><span> here</span></p>", "Back on Monday, see here"},
		{"block after text", "Away<p>Back Monday</p>Thanks", "Away\nBack Monday\nThanks"},
		{"br", "a<br>b<br/><br>c", "a\nb\n\nc"},
		{"blank lines collapsed", "a<br><br><br><br>b<p></p><p></p><div><br></div><br>c", "a\n\nb\n\nc"},
		{"headings and quote", "<h1>Away</h1><h3>Until</h3><blockquote>Monday</blockquote>", "Away\nUntil\nMonday"},
		{"nested lists", "<ul><li>Sam<ul><li>sales</li><li>billing</li></ul></li><li>Alex<ol><li>support</li></ol></li></ul>", "Sam\nsales\nbilling\nAlex\nsupport"},
		{"table", "<table><tr><td>Sam</td><td>x1234</td></tr><tr><td>Alex</td><td>x5678</td></tr></table>", "Sam x1234\nAlex x5678"},
		{"script and style dropped", "<style>p{color:red}</style><script>alert('x<y')</script><p>Away</p><script>var a = 1;</script>", "Away"},
		{"comment dropped", "<p>Away<!-- until <b>Monday</b> --> today</p><!--[if mso]>x<![endif]-->", "Away today"},
		{"head dropped", "<html><head><title>Reply</title><meta charset=utf-8></head><body>Away</body></html>", "Away"},
		{"pre keeps its lines", "<pre>a   b\nc</pre>d", "a b\nc\nd"},
		{"malformed", "<div><p>Away <b>until <i>Monday</div></b> &amp", "Away until Monday\n&"},
		{"unterminated tag is text", "Away <b", "Away <b"},
		{"self-closed script", "<p>Away</p><script/>alert(1)</script><p>Back</p>", "Away\nBack"},
		{"text left in head", "<html><head><title>t</title>Away</head><body><p>Back Monday</p></body></html>", "Away\nBack Monday"},
		{"deeply nested", strings.Repeat("<div><span>", 2000) + "Away" + strings.Repeat("</span></div>", 2000), "Away"},
		{"empty", "", ""},
		{"whitespace", " \r\n\t ", ""},
		{"empty html", "<html><head></head><body dir=\"ltr\">\r\n<div><br></div>\r\n<p>&nbsp;</p></body></html>", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := plainText(tc.in); got != tc.want {
				t.Fatalf("plainText(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}
