/* web_page: the dashboard's files (src/web/page/) in the binary, so that `cachemax web` needs
 * nothing beside it but Chart.js: each is a NUL-terminated string (web.h). The Makefile
 * rebuilds this object when a page file changes. */
	.section .rodata
	.balign 16
	.globl web_page_index_html
web_page_index_html:
	.incbin "src/web/page/index.html"
	.byte 0
	.globl web_page_app_js
web_page_app_js:
	.incbin "src/web/page/app.js"
	.byte 0
	.globl web_page_style_css
web_page_style_css:
	.incbin "src/web/page/style.css"
	.byte 0
	.section .note.GNU-stack,"",%progbits
