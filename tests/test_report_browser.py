"""The demo page and a run's report, opened in a real headless Chromium (driven by Playwright):
each page renders, every image loads, every link resolves inside the folder (which is moved first,
so that a link that is not relative fails), nothing is fetched from outside, and no JSON is dumped.

The pages are built from one tiny digits run and a synthetic demo summary (never the real demo).
Skipped, saying why, where Playwright or a Chromium is missing: .ci/run installs the system
package ``chromium``; ``ASTROCNN_CHROMIUM`` names another executable.
"""

import json
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import pytest

import astrocnn
from astrocnn.engine.demo import _write_index
from astrocnn.tasks import get_task

TINY = {"n_train": 200, "n_val": 64, "n_test": 120, "epochs": 1, "batch_size": 32, "progress_bar": False}


def chromium() -> str | None:
    named = os.environ.get("ASTROCNN_CHROMIUM")
    if named:
        return named
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="Playwright is not installed (pip install -e '.[dev]'): the browser check of the "
        "report pages is skipped",
    )
    executable = chromium()
    if executable is None:
        pytest.skip(
            "no Chromium found (Debian: apt-get install chromium; or set ASTROCNN_CHROMIUM): the "
            "browser check of the report pages is skipped"
        )
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, headless=True)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    """A demo folder as ``astrocnn demo`` leaves it: a real (tiny) digits run, a summary naming it
    and a task the registry does not know (no run folder, no figure, a missing value), and the
    index page; then moved elsewhere, as a user may move it."""
    built = tmp_path_factory.mktemp("built") / "demo-out"
    run = astrocnn.train("digits", out=str(built / "digits"), seed=3, **TINY)
    results = run.metrics["results"]
    metric, higher = get_task("digits").headline
    summary = {
        "quick": True,
        "environment": {"date": "2025-01-01T12:00+00:00", "astrocnn": astrocnn.__version__,
                        "torch": "2", "python": "3", "machine": "Linux x86_64, 2 CPU cores"},
        "tasks": {
            "digits": {
                "metric": metric, "higher_is_better": higher,
                "values": {m: r.get(metric) for m, r in results.items()},
                "model": results["cnn"]["model"], "report": "digits/report.html", "seconds": 7.0,
            },
            "retired-task": {
                "metric": "rmse", "higher_is_better": False,
                "values": {"cnn": 0.5, "mlp": 0.7, "baseline": None},
                "model": "resnet18", "report": "digits/report.html", "seconds": 75.0,
            },
        },
    }  # fmt: skip
    (built / "summary.json").write_text(json.dumps(summary))
    _write_index(built, summary)
    moved = tmp_path_factory.mktemp("moved") / "a folder with spaces"
    shutil.move(built, moved)
    return moved


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def check_page(browser, url: str, root: Path, seen: set[str]) -> dict:
    """Open ``url``; assert it renders, its images load and its links resolve inside ``root``;
    follow links to other pages. Returns what the page showed (for the page-specific checks)."""
    seen.add(url)
    page = browser.new_page()
    requests, failed, errors = [], [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto(url, wait_until="load")
    assert response is not None and response.ok, url
    shown = page.evaluate(
        """() => ({
            title: document.title,
            h1: document.querySelector('h1') && document.querySelector('h1').innerText,
            text: document.body.innerText,
            height: document.body.scrollHeight,
            images: Array.from(document.images).map(i => ({
                src: i.getAttribute('src').slice(0, 80), alt: i.alt,
                complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})),
            links: Array.from(document.links).map(a => ({raw: a.getAttribute('href'), href: a.href})),
            pre: Array.from(document.querySelectorAll('pre')).map(p => p.innerText),
            captions: Array.from(document.querySelectorAll('figure')).map(f => {
                const c = f.querySelector('figcaption'); return c ? c.innerText : ''; }),
            details: Array.from(document.querySelectorAll('details')).map(d => ({
                open: d.open, text: d.textContent})),
            best: Array.from(document.querySelectorAll('td.best')).map(td => ({
                row: td.closest('tr').id, method: td.dataset.method})),
        })"""
    )
    page.close()
    assert not failed and not errors, (url, failed, errors)
    assert shown["title"] and shown["h1"] and shown["height"] > 300, url
    # nothing from outside the folder: every request a local file or inline data
    assert all(urlparse(r).scheme in ("file", "data") for r in requests), requests
    for image in shown["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, (url, image)
        assert image["alt"], (url, image["src"])
    # no JSON dumped on the page: no block of preformatted text parses as JSON
    assert not any(is_json(block) for block in shown["pre"]), url
    assert '{"' not in shown["text"], url
    for link in shown["links"]:
        raw, target = link["raw"], urlparse(link["href"])
        assert raw and not urlparse(raw).scheme and not raw.startswith("/"), (url, raw)
        assert target.scheme == "file", (url, raw)
        path = Path(url2pathname(unquote(target.path)))
        assert path.is_file() and path.stat().st_size > 0, (url, raw, path)
        assert path.resolve().is_relative_to(root.resolve()), (url, raw)
        address = target._replace(fragment="").geturl()
        if path.suffix == ".html" and address not in seen:
            check_page(browser, address, root, seen)
        elif path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    return shown


def test_demo_page_and_run_report_in_a_browser(browser, demo_folder):
    seen: set[str] = set()
    index = check_page(browser, (demo_folder / "report.html").as_uri(), demo_folder, seen)
    report_url = (demo_folder / "digits" / "report.html").as_uri()
    assert report_url in seen, "the demo page links the run's report"

    # the demo page: a thumbnail of the task's key plot, its report, the best value marked
    sources = [i["src"] for i in index["images"]]
    assert sources == ["digits/plots/confusion.png"], sources
    summary = json.loads((demo_folder / "summary.json").read_text())
    values = summary["tasks"]["digits"]["values"]
    top = max(v for v in values.values() if v is not None)
    expected = {("digits", m) for m, v in values.items() if v == top}
    expected.add(("retired-task", "cnn"))  # lower is better; the missing value is not a winner
    assert {(b["row"], b["method"]) for b in index["best"]} == expected
    assert "retired-task" in index["text"] and "no figure" in index["text"]
    assert "n/a" in index["text"] and "1 min 15 s" in index["text"]
    assert "astrocnn demo --quick --out DIR" in index["text"]

    # the run's report: every figure captioned, the configuration folded away
    report = check_page(browser, report_url, demo_folder, set())
    plots = sorted((demo_folder / "digits" / "plots").glob("*.png"))
    assert len(report["images"]) == len(plots) == len(report["captions"]) >= 3
    assert all(len(c) > 40 for c in report["captions"]), report["captions"]
    (config,) = report["details"]
    assert not config["open"] and "task: digits" in config["text"]
    assert "task: digits" not in report["text"]  # folded: not shown until opened
    linked = {link["raw"] for link in report["links"]}
    assert {"metrics.json", "config.yaml", "predictions.npz"} <= linked
