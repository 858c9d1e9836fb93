"""Trains the small byte-level BPE (RoBERTa-style) fixture used by the parity test.

Run once with .venv/bin/python; the result is committed as roberta_bpe/tokenizer.json.
"""
import os
import sys

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402


def main():
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "roberta_bpe")
    os.makedirs(out_dir, exist_ok=True)
    text = corpus.sample(corpus.wordnet_sentences(), 30000) + corpus.sample(
        corpus.gcide_paragraphs(), 8000)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=3000,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<s>", "<pad>", "</s>", "<unk>",
                        AddedToken("<mask>", lstrip=True, special=True)],
    )
    tok.train_from_iterator(text, trainer=trainer)
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")),
        trim_offsets=True, add_prefix_space=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    print("vocab", tok.get_vocab_size(), "->", out_dir)


if __name__ == "__main__":
    main()
