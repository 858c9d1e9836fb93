"""The web playground in a real headless Chromium (Debian chromium + chromium-driver, Selenium
from PyPI): kiln serve's front page answers a question with the answer highlighted, classifies
a sentence, highlights entities, searches the collection, shows each latency, and the live
panel fills from the server's own metrics. Saves a screenshot (var/playground.png, or
$KILN_SCREENSHOT).

    .venv/bin/python tests/e2e/playground_test.py BUILD_DIR/tools/kiln/kiln
"""
import os
import shutil
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kiln_server as ks  # noqa: E402

ks.take_binary_arg()

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait
    SELENIUM = True
except ImportError:
    SELENIUM = False

HAVE_BROWSER = SELENIUM and os.path.exists(CHROMIUM) and os.path.exists(DRIVER)
SCREENSHOT = os.environ.get("KILN_SCREENSHOT", str(ks.ROOT / "var" / "playground.png"))


@unittest.skipUnless(HAVE_BROWSER, "needs chromium, chromium-driver and selenium")
@unittest.skipUnless(ks.apps_present(), ks.APPS_MISSING)
class PlaygroundTest(ks.ServerTestCase, unittest.TestCase):
    @classmethod
    def build_repository(cls, repo):
        ks.build_apps_repository(repo)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--window-size=1400,1500"):
            opts.add_argument(arg)
        cls.browser = webdriver.Chrome(service=Service(DRIVER), options=opts)
        cls.browser.get(f"http://{cls.server.http_url}/")  # redirected to /playground
        # The live table is rebuilt every second: elements read mid-rebuild go stale.
        cls.wait = WebDriverWait(cls.browser, 30,
                                 ignored_exceptions=(StaleElementReferenceException,))

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        super().tearDownClass()

    def model_selected(self, kind, name):
        self.wait.until(lambda b: any(o.get_attribute("value") == name for o in
                                      b.find_elements(By.CSS_SELECTOR, f"#{kind}-model option")))
        Select(self.browser.find_element(By.ID, f"{kind}-model")).select_by_value(name)

    def fill(self, element_id, text):
        e = self.browser.find_element(By.ID, element_id)
        e.clear()
        e.send_keys(text)

    def latency_shown(self, kind):
        self.wait.until(lambda b: b.find_element(By.ID, f"{kind}-latency").text.endswith(" ms"))

    def test_1_question_answering_highlights_the_answer(self):
        self.assertTrue(self.browser.current_url.endswith("/playground"))
        item = next(i for i in ks.apps_golden("qa")["items"] if i["windows"] == 1)
        self.model_selected("qa", "qa")
        self.fill("qa-question", item["question"])
        self.fill("qa-context", item["context"])
        self.browser.find_element(By.ID, "qa-run").click()
        mark = self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#qa-result mark")))
        self.assertEqual(mark.text, item["context"][item["start"]:item["end"]])
        self.assertIn(item["answer"], self.browser.find_element(By.CSS_SELECTOR, "#qa-result b").text)
        self.latency_shown("qa")

    def test_2_classification(self):
        self.model_selected("cls", "classify")
        self.fill("cls-text", "a gorgeous , witty , seductive movie .")
        self.browser.find_element(By.ID, "cls-run").click()
        self.wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "#cls-result b").text == "positive")
        self.assertIn("negative", self.browser.find_element(By.ID, "cls-result").text)
        self.latency_shown("cls")

    def test_3_entities(self):
        item = next(i for i in ks.apps_golden("ner")["items"] if len(i["entities"]) >= 2)
        self.model_selected("ner", "ner")
        self.fill("ner-text", item["text"])
        self.browser.find_element(By.ID, "ner-run").click()
        self.wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#ner-result mark.ent")) ==
                        len(item["entities"]))
        marks = self.browser.find_elements(By.CSS_SELECTOR, "#ner-result mark.ent")
        for mark, e in zip(marks, item["entities"]):
            self.assertTrue(mark.text.startswith(item["text"][e["start"]:e["end"]]), mark.text)
            self.assertIn(e["entity_group"], mark.text)
        self.latency_shown("ner")

    def test_4_search(self):
        item = ks.apps_golden("qa")["items"][0]
        self.model_selected("search", "search")
        self.fill("search-query", item["question"])
        self.browser.find_element(By.ID, "search-run").click()
        self.wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#search-result li")) == 5)
        self.latency_shown("search")

    def test_5_live_panel_and_screenshot(self):
        # Traffic for the panel: a few requests straight to the API.
        body = b'{"inputs":[{"name":"TEXT","shape":[1,1],"datatype":"BYTES","data":["fine ."]}]}'
        for _ in range(20):
            req = urllib.request.Request(f"http://{self.server.http_url}/v2/models/classify/infer",
                                         data=body, headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=10).read()

        def classify_row(b):
            for row in b.find_elements(By.CSS_SELECTOR, "#live tbody tr"):
                cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
                if cells and cells[0] == "classify" and int(cells[6]) >= 20:
                    return cells
            return False
        cells = self.wait.until(classify_row)
        self.assertEqual(len(cells), 7)
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        self.assertTrue(self.browser.save_screenshot(SCREENSHOT))
        self.assertGreater(os.path.getsize(SCREENSHOT), 10000)
        print(f"screenshot: {SCREENSHOT}", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
