"""A person's browser walks the store: Chromium driven by Selenium.

tests/test_browser.py has Chromium build pages it is pointed at; here it is
driven the way a person uses it: links are clicked (directory names down,
breadcrumbs back up, "Next page" on), an object opens in the browser as its
stored type says, an attachment lands in the download directory with the
stored bytes, a hostile name stays text, and with auth on the browser gets
the Basic challenge and gets in with credentials. Debian's chromium and
chromedriver are used as installed (Selenium Manager never looks for, or
downloads, a driver). Under CI a missing chromium, chromedriver or selenium
fails the tests (``.ci/run`` and setup.py's ``test`` extra install them).
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, unquote, urlsplit

import pytest
import requests
from live_server import filesystem_config, python_package, running_server, tool

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException, TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # launch() fails (under CI) or skips every test that needs it
    pass

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

#: Headless Chromium as root in a container, with nothing running on its own
#: (no updates, sync or background fetches) to slow or disturb a test.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1000,700")

#: Seconds any single wait in these tests may take.
WAIT = 10
DOWNLOAD_WAIT = 20

HOSTILE = "<img src=x onerror=alert(1)>.png"
GUIDE = "Read me first: caf\u00e9 \u2713\nsecond line"
#: CRLFs, a quoted comma, UTF-8 and bytes that are no text: any conversion shows.
CSV = b'id,name\r\n1,caf\xc3\xa9\r\n2,"a,b"\r\n3,\xff\x00raw\r\n'
PAGED = [f"n{index:02d}" for index in range(7)]

WRITER = ("writer", "writer-pass-51c2")
READER = ("reader", "reader-pass-7f3a")


def launch(profile: Path, *, downloads: Path | None = None,
           network_log: bool = False) -> webdriver.Chrome:
    """Debian's Chromium under Debian's chromedriver, with a fresh profile."""
    python_package("selenium")
    options = webdriver.ChromeOptions()
    options.binary_location = tool("chromium")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if downloads is not None:
        options.add_experimental_option("prefs", {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
        })
    if network_log:  # every response the browser receives, read back with get_log
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    options.set_capability("unhandledPromptBehavior", "ignore")  # an alert stays to be seen
    service = Service(tool("chromedriver"), log_output=str(profile.with_suffix(".log")))
    browser = webdriver.Chrome(service=service, options=options)
    browser.set_page_load_timeout(WAIT * 2)
    browser.set_script_timeout(WAIT)
    return browser


def put(url: str, data: bytes, headers: dict | None = None, auth=None) -> None:
    answer = requests.put(url, data=data, headers=headers or {}, auth=auth, timeout=10)
    assert answer.status_code == 201, answer.text


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("navigation")
    with running_server(workdir, filesystem_config(workdir / "data")) as server:
        base = f"{server.url}/v1/objects/walk"
        put(f"{base}/docs/guide.txt", GUIDE.encode(), {"Content-Type": "text/plain; charset=utf-8"})
        put(f"{base}/docs/deeper/end.txt", b"the end", {"Content-Type": "text/plain"})
        put(f"{base}/{quote(HOSTILE)}", b"not an image", {"Content-Type": "text/plain"})
        put(f"{base}/dl/data.csv", CSV, {"Content-Type": "text/csv",
                                         "Content-Disposition": 'attachment; filename="x.csv"'})
        for name in PAGED:
            put(f"{base}/pages/{name}", name.encode())
        yield server


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory, downloads) -> Iterator[webdriver.Chrome]:
    driven = launch(tmp_path_factory.mktemp("chromium") / "profile", downloads=downloads)
    try:
        yield driven
    finally:
        driven.quit()


# -- what the page shows -----------------------------------------------------


def rows(browser) -> list[tuple[str, str]]:
    """(name, size) of every listed entry, as the page shows them."""
    shown = []
    for row in browser.find_elements(By.CSS_SELECTOR, "tbody tr"):
        cells = row.find_elements(By.TAG_NAME, "td")
        if cells[0].find_elements(By.TAG_NAME, "a"):
            shown.append((cells[0].text, cells[1].text))
    return shown


def names(browser) -> list[str]:
    return [name for name, _ in rows(browser)]


def entry_link(browser, text: str):
    return browser.find_element(By.CSS_SELECTOR, "tbody").find_element(By.LINK_TEXT, text)


def crumb(browser, text: str):
    return browser.find_element(By.TAG_NAME, "h1").find_element(By.LINK_TEXT, text)


def click_to(browser, link, path: str) -> None:
    """Click ``link`` and wait until the browser shows ``path`` (decoded)."""
    link.click()
    WebDriverWait(browser, WAIT).until(
        lambda b: unquote(urlsplit(b.current_url).path) == path
        and b.execute_script("return document.readyState") == "complete")


def no_alert_shows(browser, seconds: float = 1.0) -> bool:
    """True if no alert opens within ``seconds`` (an onerror fires after load)."""
    try:
        WebDriverWait(browser, seconds).until(expected_conditions.alert_is_present())
    except TimeoutException:
        try:
            return browser.switch_to.alert is None
        except NoAlertPresentException:
            return True
    return False


# -- without auth --------------------------------------------------------------


def test_directory_links_lead_down_and_breadcrumbs_back_up(browser, server):
    browser.get(f"{server.url}/v1/objects/")
    assert browser.title == "/"
    assert names(browser) == ["walk/"]
    click_to(browser, entry_link(browser, "walk/"), "/v1/objects/walk/")
    assert browser.title == "/walk/"
    assert names(browser) == [HOSTILE, "dl/", "docs/", "pages/"]
    click_to(browser, entry_link(browser, "docs/"), "/v1/objects/walk/docs/")
    assert rows(browser) == [("deeper/", ""), ("guide.txt", f"{len(GUIDE.encode())} B")]
    click_to(browser, entry_link(browser, "deeper/"), "/v1/objects/walk/docs/deeper/")
    assert browser.title == "/walk/docs/deeper/"
    assert browser.find_element(By.TAG_NAME, "h1").text == "/ walk/ docs/ deeper/"
    assert rows(browser) == [("end.txt", "7 B")]
    click_to(browser, crumb(browser, "docs"), "/v1/objects/walk/docs/")
    assert names(browser) == ["deeper/", "guide.txt"]
    click_to(browser, crumb(browser, "/"), "/v1/objects/")
    assert names(browser) == ["walk/"]


def test_next_page_links_walk_a_directory_one_page_at_a_time(browser, server):
    browser.get(f"{server.url}/v1/objects/walk/pages/?limit=3")
    seen, pages = [], 0
    for _ in range(10):  # bounded: 7 entries, 3 a page
        pages += 1
        shown = names(browser)
        assert 1 <= len(shown) <= 3
        seen += shown
        following = browser.find_elements(By.LINK_TEXT, "Next page")
        if not following:
            break
        changed = expected_conditions.url_changes(browser.current_url)
        following[0].click()
        WebDriverWait(browser, WAIT).until(changed)
        assert "limit=3" in browser.current_url
    assert seen == PAGED
    assert pages == 3


def test_an_object_opens_in_the_browser_as_its_stored_type(browser, server):
    browser.get(f"{server.url}/v1/objects/walk/docs/")
    click_to(browser, entry_link(browser, "guide.txt"), "/v1/objects/walk/docs/guide.txt")
    assert browser.execute_script("return document.contentType") == "text/plain"
    assert browser.execute_script("return document.characterSet") == "UTF-8"
    assert browser.find_element(By.TAG_NAME, "pre").text == GUIDE


def test_an_attachment_is_downloaded_under_its_stored_name_byte_for_byte(browser, server,
                                                                         downloads):
    listing = f"{server.url}/v1/objects/walk/dl/"
    browser.get(listing)
    entry_link(browser, "data.csv").click()
    target = downloads / "x.csv"
    deadline = time.monotonic() + DOWNLOAD_WAIT
    while time.monotonic() < deadline:  # Chromium writes x.csv.crdownload, then renames it
        if target.exists() and not list(downloads.glob("*.crdownload")):
            break
        time.sleep(0.1)
    assert sorted(path.name for path in downloads.iterdir()) == ["x.csv"]
    assert target.read_bytes() == CSV
    assert browser.current_url == listing  # downloaded, not opened


def test_a_hostile_name_is_shown_as_text_and_runs_nothing(browser, server):
    browser.get(f"{server.url}/v1/objects/walk/")
    assert no_alert_shows(browser)
    assert browser.find_elements(By.TAG_NAME, "img") == []
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert HOSTILE in names(browser)
    click_to(browser, entry_link(browser, HOSTILE), f"/v1/objects/walk/{HOSTILE}")
    assert browser.execute_script("return document.contentType") == "text/plain"
    assert browser.find_element(By.TAG_NAME, "pre").text == "not an image"
    assert no_alert_shows(browser, 0.2)


def test_a_screenshot_of_a_page_reached_by_clicking_is_kept(browser, server):
    browser.get(f"{server.url}/v1/objects/")
    click_to(browser, entry_link(browser, "walk/"), "/v1/objects/walk/")
    click_to(browser, entry_link(browser, "docs/"), "/v1/objects/walk/docs/")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "navigated.png"
    shot.unlink(missing_ok=True)
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 2000  # a page, not a blank image


# -- with auth -------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("navigation-auth")
    config = filesystem_config(workdir / "data")
    config["auth"] = {"anonymous": "none", "users": {
        WRITER[0]: {"password": WRITER[1], "access": "write"},
        READER[0]: {"password": READER[1], "access": "read"},
    }}
    with running_server(workdir, config) as server:
        put(f"{server.url}/v1/objects/private/plan.txt", b"the plan", {"Content-Type": "text/plain"},
            auth=WRITER)
        yield server


@pytest.fixture
def auth_browser(tmp_path) -> Iterator[webdriver.Chrome]:
    """A fresh browser per test: no credentials remembered from another."""
    driven = launch(tmp_path / "profile", network_log=True)
    try:
        yield driven
    finally:
        driven.quit()


def answers_to(browser, path: str) -> list[tuple[int, dict[str, str]]]:
    """(status, headers) of the documents received for ``path`` since the last call."""
    seen = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.responseReceived" or message["params"]["type"] != "Document":
            continue
        response = message["params"]["response"]
        if urlsplit(response["url"]).path == path:
            seen.append((response["status"],
                         {name.lower(): value for name, value in response["headers"].items()}))
    return seen


def assert_challenged(browser, path: str) -> None:
    (status, headers), = answers_to(browser, path)
    assert status == 401
    assert headers["www-authenticate"].startswith('Basic realm="blobsvc"')
    assert browser.find_elements(By.TAG_NAME, "table") == []  # no listing shown
    assert "private" not in browser.page_source


def test_without_credentials_the_browser_gets_the_basic_challenge(auth_browser, auth_server):
    auth_browser.get(f"{auth_server.url}/v1/objects/")
    assert_challenged(auth_browser, "/v1/objects/")


def test_credentials_in_the_url_open_the_listing_and_its_links(auth_browser, auth_server):
    host = urlsplit(auth_server.url).netloc
    auth_browser.get(f"http://{READER[0]}:wrong-password@{host}/v1/objects/")
    assert_challenged(auth_browser, "/v1/objects/")
    auth_browser.get(f"http://{READER[0]}:{READER[1]}@{host}/v1/objects/")
    assert answers_to(auth_browser, "/v1/objects/")[0][0] == 200
    assert names(auth_browser) == ["private/"]
    click_to(auth_browser, entry_link(auth_browser, "private/"), "/v1/objects/private/")
    assert rows(auth_browser) == [("plan.txt", "8 B")]  # the browser kept the credentials
    click_to(auth_browser, entry_link(auth_browser, "plan.txt"), "/v1/objects/private/plan.txt")
    assert auth_browser.find_element(By.TAG_NAME, "pre").text == "the plan"


def test_an_authorization_header_set_over_cdp_opens_the_listing(auth_browser, auth_server):
    listing = f"{auth_server.url}/v1/objects/"
    token = base64.b64encode(f"{READER[0]}:{READER[1]}".encode()).decode()
    auth_browser.execute_cdp_cmd("Network.enable", {})
    auth_browser.execute_cdp_cmd("Network.setExtraHTTPHeaders",
                                 {"headers": {"Authorization": f"Basic {token}"}})
    auth_browser.get(listing)
    assert [status for status, _ in answers_to(auth_browser, "/v1/objects/")] == [200]
    assert names(auth_browser) == ["private/"]
    click_to(auth_browser, entry_link(auth_browser, "private/"), "/v1/objects/private/")
    assert rows(auth_browser) == [("plan.txt", "8 B")]
    auth_browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
    answers_to(auth_browser, "/v1/objects/")  # forget what came before
    auth_browser.get(listing)
    assert_challenged(auth_browser, "/v1/objects/")  # it was the header that let it in
