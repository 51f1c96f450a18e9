"""Each user's main tasks in a real browser (Debian's Chromium, driven by Playwright) against the real platform:
the whole Procfile under the supervisor, with the front end on its own port calling the gateway cross-origin.

The tests run in order and share one story: an employer posts jobs; a candidate registers, finds a job by searching,
applies (with a double click) and sees the decision without reloading; the employer moves them to interview and
the candidate's page shows it live while the SMTP capture holds the email, written with names; an analyst made by
the admin command reads the dashboard, whose plotted numbers equal SQL over the read models; and with the gateway
answering 503 (Redis paused) the page says so, retries by itself, and the application is not lost.
Screenshots of each user's main page go to JOBSTREAM_SCREENSHOTS_DIR (default <local_dir>/reports/screenshots).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from benchmarks.fixtures import scratch_database
from jobstream.settings import PROJECT_ROOT, Settings
from stack.processes import read_pid
from stack.smtp import wait_for_mail
from tests.chaos_harness import Platform
from tests.e2e_harness import rows, wait_for
from tests.web.browser import chromium, page_errors, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

REDIS_DB = 8
PASSWORD = "correct horse battery staple"
RUN = uuid.uuid4().hex[:6]
SEARCH_WORD = f"Streamwright{RUN}"


@pytest.fixture(scope="module")
def platform(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with scratch_database(settings, migrated=True, prefix="jobstream_web") as database:
        running = Platform(settings, tmp_path_factory.mktemp("web"), database, REDIS_DB, settings.kafka)
        try:
            yield running.start()
        finally:
            running.stop()
            print(running.supervisor_log()[-4000:])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def story(platform: Platform) -> dict[str, Any]:
    """What the tests hand on to each other: the employer, its jobs, the candidate."""
    with httpx.Client(base_url=platform.gateway_url, timeout=30) as client:
        employer = _register(client, "employer", "Erin Employer")
        headers = {"Authorization": f"Bearer {employer['access_token']}"}
        job = _post_job(client, headers, f"{SEARCH_WORD} data engineer", max_applications=None)
        full = _post_job(client, headers, f"Full {RUN} analyst", max_applications=1)
        for _ in range(2):  # the second is rejected job_full: a rejection reason for the dashboard
            applicant = _register(client, "candidate", "Filler Candidate")
            answer = client.post(
                f"/v1/jobs/{full}/applications",
                json={"cover_letter": "Hello", "resume_url": "https://cv.example/f.pdf"},
                headers={"Authorization": f"Bearer {applicant['access_token']}"},
            )
            assert answer.status_code == 202, answer.text
    wait_for(
        lambda: _scalar(platform, "SELECT COUNT(*) FROM applications WHERE job_id = %s", (full,)) == 2,
        60,
        "both applications to the full job decided in MySQL",
    )
    return {"employer": employer, "job_id": job, "full_job_id": full, "started": time.monotonic()}


@pytest.fixture(scope="module")
def shots(settings: Settings) -> Path:
    configured = os.environ.get("JOBSTREAM_SCREENSHOTS_DIR")
    return Path(configured).resolve() if configured else settings.local_dir / "reports" / "screenshots"


@pytest.fixture(scope="module")
def candidate_context(browser: Browser, platform: Platform) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=platform.web_url)
    yield context
    context.close()


def test_a_candidate_registers_finds_a_job_by_searching_applies_and_sees_it_accepted_without_reloading(
    platform, story, candidate_context, shots
):
    page = candidate_context.new_page()
    errors = page_errors(page)
    posts = _application_posts(page)
    email = f"cora-{RUN}@example.test"
    page.goto("/#/register")
    page.get_by_label("Your name").fill("Cora Candidate")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Cora Candidate (candidate)")).to_be_visible()

    page.get_by_label("Search").fill(SEARCH_WORD)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=f"{SEARCH_WORD} data engineer").click()
    page.get_by_label("Cover letter").fill("I build streaming pipelines.")
    page.get_by_label("Résumé link").fill("https://cv.example/cora.pdf")
    loads = _navigations(page)
    clicked = time.monotonic()
    page.get_by_role("button", name="Apply").dblclick()
    expect(page.get_by_test_id("application-status")).to_contain_text("Accepted", timeout=5_000)
    accepted_s = time.monotonic() - clicked

    candidate_id = page.evaluate("JSON.parse(localStorage.getItem('jobstream.session')).user.user_id")
    story["candidate"] = {"email": email, "user_id": candidate_id}
    _one_application_in_mysql(platform, candidate_id)
    assert len({key for key, _ in posts}) == 1 and len({app for _, app in posts}) == 1, posts
    assert loads == [], "the decision arrived without a reload"
    assert accepted_s < 5
    assert errors == []
    page.goto("/#/applications")
    expect(page.get_by_test_id("application-status")).to_contain_text("Accepted")
    screenshot(page, "candidate", shots)
    page.set_viewport_size({"width": 375, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "usable at 375 px: no sideways scroll"
    story["candidate_page"] = page


def test_an_employer_moves_the_applicant_to_interview_and_the_candidate_sees_it_live_and_gets_an_email_with_names(
    platform, story, browser, shots
):
    candidate_page: Page = story["candidate_page"]
    candidate_page.set_viewport_size({"width": 1280, "height": 860})
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=platform.web_url)
    page = context.new_page()
    errors = page_errors(page)
    page.goto("/#/login")
    page.get_by_label("Email").fill(story["employer"]["user"]["email"])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="My company's jobs")).to_be_visible()
    job_row = page.get_by_role("row").filter(has_text=f"{SEARCH_WORD} data engineer")
    job_row.get_by_role("link", name="Applicants").click()
    row = page.get_by_role("row").filter(has_text="Cora Candidate")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("accepted")
    screenshot(page, "employer", shots)
    row.get_by_role("combobox").select_option("interview")
    row.get_by_role("button", name="Move").click()
    expect(row.get_by_text("Moved")).to_be_visible()

    expect(candidate_page.get_by_test_id("application-status")).to_contain_text("interview", timeout=10_000)
    candidate = story["candidate"]
    mails = wait_for_mail(
        platform.local_dir / "mail",
        lambda mail: mail["To"] == candidate["email"] and "interview" in mail.get_body().get_content().lower(),
        timeout_s=20,
    )
    assert mails, "the candidate was emailed about the interview"
    text = str(mails[0]["Subject"]) + mails[0].get_body().get_content()
    assert "Cora Candidate" in text and f"{SEARCH_WORD} data engineer" in text
    assert candidate["user_id"] not in text, "names, not ids"
    assert errors == []
    context.close()


def test_a_page_whose_access_token_was_refused_refreshes_it_once_and_carries_on(story):
    page: Page = story["candidate_page"]
    old = page.evaluate("JSON.parse(localStorage.getItem('jobstream.session'))")
    page.evaluate(
        """() => {
            const session = JSON.parse(localStorage.getItem('jobstream.session'));
            session.access_token = 'expired.' + session.access_token.split('.').slice(1).join('.');
            localStorage.setItem('jobstream.session', JSON.stringify(session));
        }"""
    )
    page.reload()
    page.goto(f"{page.url.split('#')[0]}#/applications")

    expect(page.get_by_test_id("application-status")).to_contain_text("interview")
    new = page.evaluate("JSON.parse(localStorage.getItem('jobstream.session'))")
    assert new["refresh_token"] != old["refresh_token"], "the refresh token was rotated"
    assert new["access_token"] != old["access_token"]
    assert new["user"]["user_id"] == old["user"]["user_id"]


def test_an_employer_posts_edits_and_closes_a_job_and_a_colleague_invited_by_link_joins_the_company(platform, browser):
    first = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=platform.web_url)
    page = first.new_page()
    errors = page_errors(page)
    page.goto("/#/register")
    page.get_by_label("Your name").fill("Pat Poster")
    page.get_by_label("Email").fill(f"pat-{RUN}@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Account").select_option("employer")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="My company's jobs")).to_be_visible()
    page.get_by_role("link", name="Post a job").click()
    title = f"Posted{RUN} platform engineer"
    page.get_by_label("Title").fill(title)
    page.get_by_label("Description").fill("Run the stream platform.")
    page.get_by_label("Location").fill("Porto")
    page.get_by_label("Tags").fill("Kafka, python")
    page.get_by_label("Places (applications accepted)").fill("5")
    page.get_by_role("button", name="Post the job").click()
    expect(page.get_by_text("Posted: the job is on the board within seconds.")).to_be_visible()
    job_id = page.url.split("/jobs/")[1].split("/")[0]
    listed = "SELECT COUNT(*) FROM jobs WHERE job_id = %s"
    wait_for(lambda: _scalar(platform, listed, (job_id,)) == 1, 30, "the posted job in the read model")

    colleague_email = f"quinn-{RUN}@example.test"
    page.goto("/#/employer")
    expect(page.get_by_role("row").filter(has_text=title)).to_be_visible()
    page.get_by_label("Their email").fill(colleague_email)
    page.get_by_role("button", name="Create invitation").click()
    expect(page.get_by_role("alert")).to_contain_text("#/register?invite=")
    link = page.get_by_role("alert").inner_text().split(": ")[-1].strip()

    second = browser.new_context(viewport={"width": 375, "height": 800}, base_url=platform.web_url)
    colleague = second.new_page()
    colleague_errors = page_errors(colleague)
    colleague.goto(link)
    expect(colleague.get_by_role("heading", name="Accept your invitation")).to_be_visible()
    colleague.get_by_label("Your name").fill("Quinn Colleague")
    colleague.get_by_label("Email").fill(colleague_email)
    colleague.get_by_label("Password").fill(PASSWORD)
    colleague.get_by_role("button", name="Create account").click()
    expect(colleague.get_by_text("Quinn Colleague (employer)")).to_be_visible()
    expect(colleague.get_by_role("row").filter(has_text=title)).to_be_visible()
    assert colleague.evaluate("document.documentElement.scrollWidth") <= 375, "usable at 375 px"

    colleague.goto(f"/#/employer/jobs/{job_id}/edit")
    colleague.get_by_label("Title").fill(f"{title} (senior)")
    colleague.get_by_role("button", name="Save changes").click()
    expect(colleague.get_by_text("Saved")).to_be_visible()
    colleague.on("dialog", lambda dialog: dialog.accept())
    colleague.get_by_role("button", name="Close this job").click()
    expect(colleague.get_by_text("The job is closed.")).to_be_visible()

    def shown() -> dict[str, Any] | None:
        job = httpx.get(f"{platform.gateway_url}/v1/jobs/{job_id}").json()
        return job if job["status"] == "closed" and job["title"].endswith("(senior)") else None

    job = wait_for(shown, 30, "the edit and the close in the read model")
    assert job["tags"] == ["kafka", "python"] and job["max_applications"] == 5
    page.goto(f"/#/jobs/{job_id}")
    expect(page.get_by_text("This job is closed.")).to_be_visible()
    assert errors == [] and colleague_errors == []
    first.close()
    second.close()


def test_an_admin_invites_an_analyst_from_the_browser_who_registers_by_the_link(platform, browser):
    admin_email = f"adam-{RUN}@example.test"
    _admin_command(platform, "create-user", "--email", admin_email, "--role", "admin", "--display-name", "Adam Admin")
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=platform.web_url)
    page = context.new_page()
    errors = page_errors(page)
    page.goto("/#/login")
    page.get_by_label("Email").fill(admin_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Invitations").click()
    analyst_email = f"ivy-{RUN}@example.test"
    page.get_by_label("Their email").fill(analyst_email)
    page.get_by_label("Role").select_option("analyst")
    page.get_by_role("button", name="Create invitation").click()
    expect(page.get_by_role("alert")).to_contain_text("#/register?invite=")
    link = page.get_by_role("alert").inner_text().split(": ")[-1].strip()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()

    page.goto(link)
    page.get_by_label("Your name").fill("Ivy Invited")
    page.get_by_label("Email").fill(analyst_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Ivy Invited (analyst)")).to_be_visible()
    expect(page.get_by_role("heading", name="Analytics")).to_be_visible()
    assert errors == []
    context.close()


def test_an_analyst_made_by_the_admin_command_sees_plotted_totals_equal_to_sql_over_the_read_models(
    platform, story, browser, shots
):
    email = f"ana-{RUN}@example.test"
    _admin_command(platform, "create-user", "--email", email, "--role", "analyst", "--display-name", "Ana Analyst")
    _close_minute_windows(platform, story)

    context = browser.new_context(viewport={"width": 1280, "height": 1000}, base_url=platform.web_url)
    page = context.new_page()
    errors = page_errors(page)
    page.goto("/#/login")
    page.get_by_label("Email").focus()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")  # the keyboard alone logs in
    expect(page.get_by_role("heading", name="Analytics")).to_be_visible()
    page.goto(f"/#/dashboard?job={story['full_job_id']}")
    expect(page.get_by_test_id("funnel-totals")).not_to_be_empty()
    expect(page.get_by_test_id("job-window-totals")).not_to_be_empty()
    plotted = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('section.chart')].map((section) => [
            section.querySelector('[data-testid]').dataset.testid,
            window.Chart.getChart(section.querySelector('canvas')).data.datasets.map((d) => d.data),
        ]))"""
    )
    screenshot(page, "analyst", shots)

    job_id = story["full_job_id"]
    window_sql = (
        "SELECT SUM(applications), SUM(accepted), SUM(rejected) FROM job_window_stats"
        " WHERE job_id = %s AND window_start >= UTC_TIMESTAMP(3) - INTERVAL 1 HOUR"
    )
    windows = [int(n) for n in rows(platform.settings.mysql, platform.database, window_sql, (job_id,))[0]]
    assert [sum(series) for series in plotted["job-window-totals"]] == windows == [2, 1, 1]
    funnel = rows(
        platform.settings.mysql,
        platform.database,
        "SELECT applications, accepted FROM job_funnel WHERE job_id = %s",
        (job_id,),
    )[0]
    views = _scalar(platform, "SELECT COALESCE(SUM(views), 0) FROM job_window_stats WHERE job_id = %s", (job_id,))
    assert plotted["funnel-totals"][0][:3] == [views, *funnel]
    rejected = _scalar(
        platform,
        "SELECT COALESCE(SUM(rejected), 0) FROM job_window_stats"
        " WHERE window_start >= UTC_TIMESTAMP(3) - INTERVAL 1 DAY",
    )
    assert sum(plotted["rejection-totals"][0]) == rejected >= 1
    assert errors == []
    context.close()


def test_with_the_gateway_answering_503_the_page_says_so_retries_by_itself_and_nothing_is_lost(
    platform, story, browser, settings
):
    redis_pid = read_pid(settings.local_dir / "redis" / "redis.pid")
    assert redis_pid is not None, "the local stack's own Redis is needed to pause it"
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=platform.web_url)
    page = context.new_page()
    errors = page_errors(page)
    posts = _application_posts(page)
    page.goto("/#/register")
    page.get_by_label("Your name").fill("Rita Retry")
    page.get_by_label("Email").fill(f"rita-{RUN}@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Rita Retry (candidate)")).to_be_visible()
    page.goto(f"/#/jobs/{story['job_id']}")
    page.get_by_label("Cover letter").fill("Retry me.")
    page.get_by_label("Résumé link").fill("https://cv.example/rita.pdf")

    os.kill(redis_pid, signal.SIGSTOP)
    try:
        page.get_by_role("button", name="Apply").click()
        expect(page.locator("#notice")).to_contain_text("Retrying in", timeout=10_000)
        expect(page.locator("#notice")).to_contain_text("503")
        time.sleep(3)
    finally:
        os.kill(redis_pid, signal.SIGCONT)
    expect(page.get_by_test_id("application-status")).to_contain_text("Accepted", timeout=30_000)
    expect(page.locator("#notice")).to_be_hidden()

    candidate_id = page.evaluate("JSON.parse(localStorage.getItem('jobstream.session')).user.user_id")
    _one_application_in_mysql(platform, candidate_id)
    assert len({key for key, _ in posts}) == 1, "every retry carried the same Idempotency-Key"
    assert errors == []
    context.close()


def _admin_command(platform: Platform, *args: str) -> None:
    """`python -m gateway.accounts.admin ARGS` against the platform's database, the password on standard input."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway.accounts.admin", *args],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=platform.env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def _register(client: httpx.Client, role: str, name: str) -> dict[str, Any]:
    body = {"email": f"{role}-{uuid.uuid4().hex[:10]}@example.test", "password": PASSWORD, "display_name": name}
    answer = client.post("/v1/auth/register", json={**body, "role": role})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _post_job(client: httpx.Client, headers: dict[str, str], title: str, max_applications: int | None) -> str:
    body = {"title": title, "description": "Pipelines.", "location": "Lisbon", "tags": ["kafka"]}
    answer = client.post("/v1/jobs", json={**body, "max_applications": max_applications}, headers=headers)
    assert answer.status_code == 202, answer.text
    job_id = str(answer.json()["job_id"])
    wait_for(lambda: client.get(f"/v1/jobs/{job_id}").status_code == 200, 60, f"job {title} readable")
    return job_id


def _scalar(platform: Platform, sql: str, args: object = None) -> int:
    return int(rows(platform.settings.mysql, platform.database, sql, args)[0][0])


def _one_application_in_mysql(platform: Platform, candidate_id: str) -> None:
    """The candidate's application reaches MySQL (the page may show it first, from Redis), and stays alone."""
    sql = "SELECT COUNT(*) FROM applications WHERE candidate_id = %s"
    wait_for(lambda: _scalar(platform, sql, (candidate_id,)) >= 1, 30, "the application in MySQL")
    time.sleep(2)  # a second application, had one been sent, would be decided and written by now
    assert _scalar(platform, sql, (candidate_id,)) == 1


def _application_posts(page: Page) -> list[tuple[str, str]]:
    """(Idempotency-Key, application id) of each application POST the page got an answer to."""
    seen: list[tuple[str, str]] = []

    def record(response: Any) -> None:
        request = response.request
        if request.method == "POST" and request.url.endswith("/applications") and response.status == 202:
            seen.append((request.headers.get("idempotency-key", ""), json.loads(response.text())["application_id"]))

    page.on("response", record)
    return seen


def _navigations(page: Page) -> list[str]:
    """Full page loads from now on (a hash change is not one)."""
    loads: list[str] = []
    page.on("load", lambda: loads.append(page.url))
    return loads


def _close_minute_windows(platform: Platform, story: dict[str, Any]) -> None:
    """Stream time closes a minute window: once its minute (and the 10 s grace) has passed, a view of the job from
    the gateway (job.viewed) moves its partition's time past it, and the window is written."""
    job_id = story["full_job_id"]
    time.sleep(max(0.0, story["started"] + 75 - time.monotonic()))

    def written() -> bool:
        httpx.get(f"{platform.gateway_url}/v1/jobs/{job_id}", timeout=10)
        sql = "SELECT COALESCE(SUM(applications), 0) FROM job_window_stats WHERE job_id = %s"
        return _scalar(platform, sql, (job_id,)) == 2

    wait_for(written, 90, "the minute window of the job's two applications in MySQL", interval_s=2)
