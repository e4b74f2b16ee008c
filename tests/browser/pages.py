"""What every customer page must offer, checked in the browser on each step."""

import re

from playwright.sync_api import Page

from tests.browser.conftest import AXE_CORE

# Run in the page: the problems a keyboard or screen-reader user would meet.
_AUDIT = """() => {
  const problems = [];
  const describedBy = (el) => (el.getAttribute("aria-describedby") || "").split(/\\s+/)
    .filter(Boolean);
  const controls = document.querySelectorAll("input:not([type=hidden]), select, textarea");
  for (const el of controls) {
    const name = el.name || el.id || el.outerHTML;
    const labelled = (el.labels && [...el.labels].some((l) => l.textContent.trim()))
      || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
    if (!labelled) problems.push(`${name}: no label`);
    for (const id of describedBy(el)) {
      const target = document.getElementById(id);
      if (!target || !target.textContent.trim()) problems.push(`${name}: describedby ${id} empty`);
    }
    const error = el.id && document.getElementById(`${el.id}_error`);
    const invalid = el.getAttribute("aria-invalid") === "true";
    if (error && !invalid) problems.push(`${name}: an error but no aria-invalid`);
    if (invalid && !describedBy(el).includes(`${el.id}_error`)) {
      problems.push(`${name}: aria-invalid without its error in aria-describedby`);
    }
    const help = el.id && document.getElementById(`${el.id}_helptext`);
    if (help && !describedBy(el).includes(help.id)) problems.push(`${name}: help not described`);
  }
  for (const el of document.querySelectorAll("a[href], button")) {
    if (!(el.textContent.trim() || el.getAttribute("aria-label"))) {
      problems.push(`no accessible name: ${el.outerHTML}`);
    }
  }
  const ids = [...document.querySelectorAll("[id]")].map((el) => el.id);
  for (const id of new Set(ids)) {
    if (ids.indexOf(id) !== ids.lastIndexOf(id)) problems.push(`duplicate id ${id}`);
  }
  const headings = document.querySelectorAll("h1").length;
  if (headings !== 1) problems.push(`${headings} h1 headings`);
  if (!document.title.trim()) problems.push("no title");
  return {lang: document.documentElement.lang, problems};
}"""


def check_page(page: Page, language: str) -> None:
    """The page is in `language`, every field is labelled, errors and help are tied to
    their field, every link and button has a name."""
    audit = page.evaluate(_AUDIT)
    assert audit["lang"] == language, f"{page.url}: lang={audit['lang']!r}"
    assert audit["problems"] == [], f"{page.url}: {audit['problems']}"


def focused(page: Page) -> str:
    """The focused element: its name, else its id, else its text."""
    return page.evaluate(
        "() => { const el = document.activeElement;"
        " return el.name || el.id || el.textContent.trim(); }"
    )


def check_accessibility(page: Page) -> None:
    """axe-core finds no serious or critical problem on the page (WCAG 2.2 A and AA rules and
    axe's best practices). The screen must have been opened with axe=True."""
    page.add_script_tag(path=str(AXE_CORE))
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
          .filter((v) => v.impact === "serious" || v.impact === "critical")
          .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target)}`)"""
    )
    assert violations == [], f"{page.url}: {violations}"


# The colours WCAG 1.4.11 compares: a control's focus ring and its border against the colour
# around the control (the first ancestor with a background), as the browser computed them.
_COLOURS = """(selector) => {
  const el = document.querySelector(selector);
  el.focus();
  const style = getComputedStyle(el);
  let around = el.parentElement;
  while (around && getComputedStyle(around).backgroundColor === "rgba(0, 0, 0, 0)") {
    around = around.parentElement;
  }
  return {
    focused: document.activeElement === el,
    ring: style.outlineStyle === "none" ? null : style.outlineColor,
    ringWidth: parseFloat(style.outlineWidth),
    border: style.borderTopColor,
    around: around ? getComputedStyle(around).backgroundColor : "rgb(255, 255, 255)",
  };
}"""


def _luminance(colour: str) -> float:
    red, green, blue = (int(c) / 255 for c in re.findall(r"\d+", colour)[:3])
    linear = [
        c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (red, green, blue)
    ]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    """WCAG's contrast ratio of two opaque CSS rgb() colours."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def control_colours(page: Page, selector: str) -> dict:
    """The focused control's ring and border colours and the colour around it."""
    colours = page.evaluate(_COLOURS, selector)
    assert colours["focused"], f"{selector} could not take the focus"
    return colours
