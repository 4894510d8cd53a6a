// Package e2e holds the portal's end-to-end tests: journeys driven in a real
// headless Chromium (Debian's chromium package) through the pages a citizen,
// an officer and a bank's customer use, with axe-core checking every page
// visited for WCAG 2.1 A/AA violations and every page's transferred weight
// held under budget. It has no production code.
//
// The tests need /usr/bin/chromium (or ORTAQ_CHROMIUM) and axe-core
// (tools/browser: npm ci; or ORTAQ_AXE_JS); `./dev test` installs both.
// ORTAQ_SCREENSHOTS=1 rewrites docs/screenshots from the journeys.
//
// May import: internal/apptest, internal/portal/portaltest, internal/notify,
// internal/identity, internal/iin, internal/demo.
package e2e
