"""What every customer page must offer, checked in the browser on each step."""

from playwright.sync_api import Page

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
