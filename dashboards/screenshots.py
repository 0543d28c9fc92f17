"""Take this folder's screenshots of a study in optuna-dashboard, in headless Chromium.

Serve a storage first (``hpsearch dashboard --storage … --port 8093``), then

    python dashboards/screenshots.py --url http://127.0.0.1:8093 \
        --study demo-digits-weight-decay --out dashboards

writes ``dashboard-study.png`` (the study page), ``dashboard-figures.png`` (hpsearch's plotly
figures on it) and ``dashboard-note.png`` (the note). Needs selenium (a dev dependency) and
``chromium`` + ``chromedriver`` on the PATH.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import urllib.request
from pathlib import Path

# The title of one of hpsearch's figures (hpsearch/results/publish.py) in their first row.
FIRST_FIGURE_TITLE = "hypervolume of the front so far"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8093", help="the served dashboard")
    parser.add_argument("--study", required=True, help="study name")
    parser.add_argument("--out", default=str(Path(__file__).parent), help="folder to write to")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args(argv)
    browser, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver_path:
        print("needs chromium and chromedriver on the PATH", file=sys.stderr)
        return 1
    with urllib.request.urlopen(f"{args.url}/api/studies", timeout=30) as response:
        summaries = json.load(response)["study_summaries"]
    ids = [s["study_id"] for s in summaries if s["study_name"] == args.study]
    if not ids:
        print(f"no study {args.study!r} at {args.url}", file=sys.stderr)
        return 1
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--hide-scrollbars",
        f"--window-size={args.width},{args.height}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(driver_path), options=options)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    page = f"{args.url}/dashboard/studies/{ids[0]}"
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(page)
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "header"), args.study))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".js-plotly-plot .points")))
        time.sleep(3)  # every plot drawn
        driver.save_screenshot(str(out / "dashboard-study.png"))
        figure = (By.XPATH, f"//*[contains(@class, 'gtitle')][contains(., '{FIRST_FIGURE_TITLE}')]")
        wait.until(ec.presence_of_element_located(figure))
        card = driver.find_element(*figure).find_element(
            By.XPATH, "ancestor::*[contains(@class, 'js-plotly-plot')]"
        )
        # Both rows of figures, below the page's fixed header.
        driver.set_window_size(args.width, args.height + 200)
        driver.execute_script("arguments[0].scrollIntoView(true); window.scrollBy(0, -96);", card)
        time.sleep(2)
        driver.save_screenshot(str(out / "dashboard-figures.png"))
        driver.set_window_size(args.width, args.height)
        driver.get(f"{page}/note")
        wait.until(ec.presence_of_element_located((By.XPATH, "//h2[normalize-space()='Results']")))
        time.sleep(1)
        driver.save_screenshot(str(out / "dashboard-note.png"))
    finally:
        driver.quit()
    for name in ("dashboard-study.png", "dashboard-figures.png", "dashboard-note.png"):
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
