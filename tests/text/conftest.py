"""Text fixtures: tiny transformers models built from a config (fast), and a real local HTTP
server that serves one of them through the OpenAI chat-completions protocol, with failure modes."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

CORPUS = [
    "the movie was great and the actors were wonderful",
    "a slow plot with flat jokes and a long ending",
    "I loved the music, the story and the photography",
    "rewrite the text keeping its meaning please",
    "this film is a moving drama about a family",
    "the service was terrible and the food was cold",
]


def _tokenizer(path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.save_pretrained(path)
    return fast


@pytest.fixture(scope="session")
def tiny_causal_dir(tmp_path_factory):
    """A 2-layer Llama with random weights and a chat template, saved like any local model dir."""
    pytest.importorskip("transformers", reason="the local LLM backend needs transformers (augflow[llm])")
    pytest.importorskip("tokenizers", reason="building the tiny tokenizer needs tokenizers")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny_causal")
    tok = _tokenizer(path)
    tok.chat_template = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                         "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
    tok.save_pretrained(path)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_seq2seq_dir(tmp_path_factory):
    """A 1-layer T5 with random weights (no chat template: gets the flat prompt)."""
    pytest.importorskip("transformers", reason="the local LLM backend needs transformers (augflow[llm])")
    pytest.importorskip("tokenizers", reason="building the tiny tokenizer needs tokenizers")
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    path = tmp_path_factory.mktemp("tiny_seq2seq")
    tok = _tokenizer(path)
    config = T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1,
                      num_heads=4, pad_token_id=0, eos_token_id=2, decoder_start_token_id=0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        T5ForConditionalGeneration(config).save_pretrained(path)
    return path


class OpenAIServer:
    """A real HTTP server on 127.0.0.1 speaking OpenAI chat-completions, backed by a local model.

    `script` is a list of modes consumed one per request (then `mode`): ok, 500, 400, malformed,
    no_content, hang (answers only after the test ends: the client must time out), barrier
    (waits for a second concurrent request, to measure the client's concurrency).
    """

    def __init__(self, backend):
        self.backend = backend
        self.mode = "ok"
        self.script: list[str] = []
        self.requests: list[dict] = []
        self.inflight = 0
        self.max_inflight = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.barrier = threading.Barrier(2)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "body": body})
                    mode = server.script.pop(0) if server.script else server.mode
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                try:
                    server.answer(self, mode, body)
                finally:
                    with server.lock:
                        server.inflight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def answer(self, handler, mode, body):
        from augflow.text.backends import GenerationRequest

        if mode == "hang":
            self.release.wait(10)
            mode = "ok"
        if mode == "barrier":
            try:
                self.barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass
            mode = "ok"
        if mode in ("500", "400"):
            self._send(handler, int(mode), {"error": {"message": "injected failure"}})
            return
        if mode == "malformed":
            self._send(handler, 200, b'{"choices": [{"message": ')
            return
        if mode == "no_content":
            self._send(handler, 200, {"choices": []})
            return
        req = GenerationRequest(body["messages"], body["messages"][-1]["content"], int(body.get("seed", 0)),
                                float(body.get("temperature", 0.7)), int(body.get("max_tokens", 16)),
                                float(body.get("top_p", 1.0)))
        gen = self.backend.generate([req])[0]
        self._send(handler, 200, {"id": "chatcmpl-test", "object": "chat.completion", "model": body["model"],
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": gen.text}}]})

    @staticmethod
    def _send(handler, status, payload):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def close(self):
        self.release.set()
        self.barrier.abort()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def openai_server(tiny_causal_dir):
    pytest.importorskip("httpx", reason="the HTTP backend needs httpx (augflow[llm])")
    from augflow.text.backends.local import TransformersBackend

    server = OpenAIServer(TransformersBackend(str(tiny_causal_dir), min_new_tokens=4))
    yield server
    server.close()
