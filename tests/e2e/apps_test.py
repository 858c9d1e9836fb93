"""The applications through `kiln serve` with the official Triton client library: question
answering (question + context in; answer, score, start, end out), named entities (TEXT in;
entities out) and classification (label, probabilities), each a model of the repository whose
version folder is a LoRA adapter (models/) merged into its base at load. Answers and entities
are checked against the Hugging Face pipelines' (tests/golden/apps); bad requests get clear
errors and the server keeps serving.

    .venv/bin/python tests/e2e/apps_test.py BUILD_DIR/tools/kiln/kiln
"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kiln_server as ks  # noqa: E402

ks.take_binary_arg()

import numpy as np  # noqa: E402
import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

golden = ks.apps_golden


def strings(*values):
    return np.array([[v.encode()] for v in values], dtype=object)


def http_input(name, array):
    t = httpclient.InferInput(name, list(array.shape), "BYTES")
    t.set_data_from_numpy(array)
    return t


def grpc_input(name, array):
    t = grpcclient.InferInput(name, list(array.shape), "BYTES")
    t.set_data_from_numpy(array)
    return t


@unittest.skipUnless(ks.apps_present(), ks.APPS_MISSING)
class AppsTest(ks.ServerTestCase, unittest.TestCase):
    @classmethod
    def build_repository(cls, repo):
        ks.build_apps_repository(repo)

    def setUp(self):
        self.http = httpclient.InferenceServerClient(self.server.http_url)
        self.grpc = grpcclient.InferenceServerClient(self.server.grpc_url)

    def test_metadata_declares_the_application_tensors(self):
        qa = self.http.get_model_metadata("qa")
        self.assertEqual({t["name"] for t in qa["inputs"]} >= {"question", "context"}, True)
        outputs = {t["name"]: t["datatype"] for t in qa["outputs"]}
        self.assertEqual(outputs["answer"], "BYTES")
        self.assertEqual(outputs["start"], "INT64")
        ner = self.http.get_model_metadata("ner")
        self.assertIn("entities", {t["name"] for t in ner["outputs"]})

    def test_question_answering_matches_the_pipeline(self):
        items = golden("qa")["items"]
        # Four requests of 4 rows each over HTTP, and single rows over gRPC; long contexts
        # (several windows) included.
        picks = items[:12] + [i for i in items if i["windows"] > 1][:4]
        for lo in range(0, len(picks), 4):
            rows = picks[lo:lo + 4]
            result = self.http.infer("qa", [
                http_input("question", strings(*[r["question"] for r in rows])),
                http_input("context", strings(*[r["context"] for r in rows]))])
            answers = result.as_numpy("answer")
            self.assertEqual(answers.shape, (len(rows), 1))
            for k, r in enumerate(rows):
                self.assertEqual(answers[k, 0].decode(), r["answer"])
                self.assertEqual(int(result.as_numpy("start")[k, 0]), r["start"])
                self.assertEqual(int(result.as_numpy("end")[k, 0]), r["end"])
                self.assertAlmostEqual(float(result.as_numpy("score")[k, 0]), r["score"],
                                       delta=1e-3 * r["score"] + 1e-6)
        r = picks[-1]
        result = self.grpc.infer("qa", [grpc_input("question", strings(r["question"])),
                                        grpc_input("context", strings(r["context"]))],
                                 outputs=[grpcclient.InferRequestedOutput("answer")])
        self.assertEqual(result.as_numpy("answer")[0, 0].decode(), r["answer"])
        self.assertIsNone(result.as_numpy("score"))

    def test_entities_match_the_pipeline(self):
        items = [i for i in golden("ner")["items"] if i["entities"]][:12]
        result = self.http.infer("ner", [http_input("TEXT", strings(*[i["text"] for i in items[:8]]))])
        got = result.as_numpy("entities")
        self.assertEqual(got.shape, (8, 1))
        for k, item in enumerate(items[:8]):
            entities = json.loads(got[k, 0])
            self.assertEqual([(e["entity_group"], e["word"], e["start"], e["end"]) for e in entities],
                             [(e["entity_group"], e["word"], e["start"], e["end"])
                              for e in item["entities"]])
            for e, w in zip(entities, item["entities"]):
                self.assertAlmostEqual(e["score"], w["score"], delta=1e-4)

    def test_classification_label_and_probabilities(self):
        items = golden("cls")["items"][:8]
        result = self.grpc.infer("classify", [grpc_input("TEXT", strings(*[i["text"] for i in items]))])
        probs = result.as_numpy("probabilities")
        labels = result.as_numpy("label")
        for k, item in enumerate(items):
            want = max(item["scores"], key=item["scores"].get)
            self.assertEqual(labels[k, 0].decode(), want)
            self.assertAlmostEqual(float(probs[k].max()), item["scores"][want], delta=1e-5)

    def test_bad_requests_are_clear_errors(self):
        q = http_input("question", strings("who?"))
        cases = [
            ([q], "question and context"),  # context missing
            ([q, http_input("context", strings(""))], "context is empty"),
            ([http_input("question", strings("a", "b")), http_input("context", strings("c"))],
             "batch size"),
            ([q, http_input("context", strings("x")), http_input("TEXT", strings("y"))],
             "does not go with"),
            ([http_input("question", strings("why " * 400)), http_input("context", strings("x"))],
             "question too long"),
        ]
        for inputs, needle in cases:
            with self.subTest(needle=needle):
                with self.assertRaises(InferenceServerException) as e:
                    self.http.infer("qa", inputs)
                self.assertIn(needle, str(e.exception))
                self.assertEqual(e.exception.status(), "400")
        with self.assertRaises(InferenceServerException) as e:
            self.http.infer("qa", [q, http_input("context", strings("Paris."))],
                            outputs=[httpclient.InferRequestedOutput("start_logits")])
        self.assertIn("start_logits", str(e.exception))
        with self.assertRaises(InferenceServerException) as e:
            self.http.infer("qa", [http_input("TEXT", strings("Paris."))],
                            outputs=[httpclient.InferRequestedOutput("answer")])
        self.assertIn("question and context", str(e.exception))
        # Still serving.
        ok = self.http.infer("qa", [q, http_input("context", strings("Kiln was built by a small team."))])
        self.assertEqual(ok.as_numpy("answer").shape, (1, 1))

    def search(self, model, *queries, top_k=10):
        result = self.grpc.infer(model, [grpc_input("QUERY", np.array([q.encode() for q in queries],
                                                                    dtype=object))],
                                 parameters={"top_k": top_k})
        return result.as_numpy("ids"), result.as_numpy("scores"), result.as_numpy("documents")

    def test_search_finds_the_paragraph_of_a_question(self):
        items = golden("qa")["items"][:40:2]
        ids, scores, docs = self.search("search", *[i["question"] for i in items])
        exact_ids, exact_scores, _ = self.search("search_exact", *[i["question"] for i in items])
        self.assertEqual(ids.shape, (20, 10))
        np.testing.assert_array_equal(ids, exact_ids)  # HNSW is exact at this size
        np.testing.assert_allclose(scores, exact_scores, atol=1e-5)
        self.assertTrue(np.all(np.diff(scores, axis=1) <= 1e-6))  # best first
        hits = sum(any(d.decode() == i["context"].replace("\n", " ") for d in row)
                   for row, i in zip(docs, items))
        self.assertGreaterEqual(hits, 15)  # the question's own paragraph in the top 10

    def test_search_adds_documents(self):
        doc = "The kiln server answers questions about pottery glazes fired at cone six."
        result = self.http.infer("search", [http_input("DOCUMENTS", np.array([doc.encode()],
                                                                         dtype=object))])
        new_id = int(result.as_numpy("added_ids")[0])
        ids, scores, docs = self.search("search", "at which cone are the glazes fired?", top_k=1)
        self.assertEqual(int(ids[0, 0]), new_id)
        self.assertEqual(docs[0, 0].decode(), doc)

    def test_search_bad_requests(self):
        q = http_input("QUERY", np.array([b"a question"], dtype=object))
        d = http_input("DOCUMENTS", np.array([b"a document"], dtype=object))
        for inputs, params, needle in (([q, d], None, "not both"), ([q], {"top_k": 0}, "top_k"),
                                       ([q], {"top_k": "ten"}, "top_k")):
            with self.subTest(needle=needle):
                with self.assertRaises(InferenceServerException) as e:
                    self.http.infer("search", inputs, parameters=params)
                self.assertIn(needle, str(e.exception))
                self.assertEqual(e.exception.status(), "400")
        with self.assertRaises(InferenceServerException) as e:
            self.http.infer("search", [q], outputs=[httpclient.InferRequestedOutput("added_ids")])
        self.assertIn("added_ids", str(e.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
