// The held-out data `kiln eval` measures on and the calibration texts `kiln build` uses, as
// scripts/prepare_eval_data.sh writes them into var/data/ from ../shared/data.
//
// Calibration and evaluation never overlap: evaluation reads only dev sets (GLUE SST-2 dev,
// SQuAD v1.1 dev) plus SST-2 train rows 1-2000 to train the probe; calibration reads SST-2 train
// rows 10001-12000 (kCalibSst2) or SQuAD v1.1 train questions and contexts (kCalibSquad,
// kCalibSquadQa). There is no STS (human similarity) set in ../shared/data, hence no Spearman.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/status.h"

namespace kiln::quant {

/// Default folder of the prepared files.
inline constexpr const char* kEvalDataDir = "var/data";
/// Calibration texts, one per line: SST-2 train rows 10001-12000 (short single sentences).
inline constexpr const char* kCalibSst2 = "calib_sst2.txt";
/// Calibration texts, one per line: 1000 SQuAD v1.1 train questions and their contexts.
inline constexpr const char* kCalibSquad = "calib_squad_train.txt";
/// QA calibration pairs: question<TAB>context from SQuAD v1.1 train.
inline constexpr const char* kCalibSquadQa = "calib_squad_train_qa.tsv";

/// A sentence with a binary label.
struct LabelledText {
  std::string text;
  int label = 0;
};

/// One SQuAD question.
struct QaExample {
  std::string id;
  std::string question;
  std::string context;
  std::vector<std::string> answers;  ///< gold answers (1 or more)
};

/// Retrieval: queries and the corpus they search, with each query's source paragraph.
struct RetrievalSet {
  std::vector<std::string> queries;
  std::vector<int32_t> gold;  ///< index into corpus of each query's paragraph
  std::vector<std::string> corpus;
};

/// Reads label<TAB>text lines (sst2_dev.tsv, sst2_probe_train.tsv); at most `limit` (0: all).
Result<std::vector<LabelledText>> read_labelled_tsv(const std::string& path, int64_t limit = 0);
/// Reads id<TAB>question<TAB>context<TAB>answer... lines (squad_dev_qa.tsv).
Result<std::vector<QaExample>> read_squad_tsv(const std::string& path, int64_t limit = 0);
/// The first `paragraphs` paragraphs of squad_dev_corpus.tsv and their first questions
/// (squad_dev_queries.tsv) under `dir`.
Result<RetrievalSet> read_retrieval_set(const std::string& dir, int64_t paragraphs);
/// Non-empty lines of a text file (calibration texts); at most `limit` (0: all).
Result<std::vector<std::string>> read_lines(const std::string& path, int64_t limit = 0);

}  // namespace kiln::quant
