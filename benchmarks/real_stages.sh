#!/usr/bin/env bash
# A real pre-trained model through every stage that loads one (issue 20 item 4), timed.
#
#   INSTRUCTPT_HOME=... bash benchmarks/real_stages.sh LABEL MODEL_DIR WORK_DIR [--chat]
#
# MODEL_DIR is a save_pretrained folder, e.g. `instructpt assets path smollm2-135m-instruct`;
# the wiki-leads asset must be fetched. Each stage runs the installed `instructpt` exactly
# as a user would, on smoke sizes (16 leads to synthesize, 200 to continue on, 200 SFT
# records); `--chat` adds magpie, which needs the model's chat template. One line per
# stage goes to WORK_DIR/stages.tsv: label, stage, wall seconds, exit code, what came out.
set -uo pipefail
label=$1 model=$2 work=$3 chat=${4:-}
bin=$(dirname "$(readlink -f "$0")")/../.venv/bin
ipt="$bin/instructpt"
leads=$("$ipt" assets path wiki-leads) || { echo "run: instructpt assets get wiki-leads" >&2; exit 2; }
mkdir -p "$work"
tsv="$work/stages.tsv"
: > "$tsv"

stage() {  # stage NAME -- COMMAND...   (the result column is the command's last line)
  local name=$1; shift 2
  local t0 rc t
  t0=$(date +%s.%N)
  "$@" > "$work/$name.log" 2>&1
  rc=$?
  t=$(echo "$(date +%s.%N) - $t0" | bc)
  printf '%s\t%s\t%.1f\t%s\t%s\n' "$label" "$name" "$t" "$rc" "$(grep -v '^\s*$' "$work/$name.log" | tail -n 1 | tr '\t' ' ' | cut -c1-300)" | tee -a "$tsv"
}

head -n 16 "$leads" > "$work/leads16.jsonl"
sed -n '17,216p' "$leads" > "$work/leads200.jsonl"
# 200 SFT records: name the article a lead is about (title answers, Alpaca fields).
"$bin/python" - "$work/leads200.jsonl" "$work/sft.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as out:
    for line in src:
        doc = json.loads(line)
        out.write(json.dumps({"instruction": "Which article does this text open?\n\n" + doc["text"][:600],
                              "output": doc["id"].removeprefix("wiki/")}) + "\n")
EOF

synth="$work/synth" cpt="$work/cpt" gen="$work/gen" served="$work/served"

stage ingest-16 -- "$ipt" ingest "$work/leads16.jsonl" --run-dir "$synth" --num-shards 1 --no-progress
stage synthesize-hf -- \
  "$ipt" synthesize --run-dir "$synth" --engine hf --model "$model" --max-new-tokens 200 \
  --hf-batch-size 16 --num-rounds 1 --no-progress

# transformers serve + the openai engine on the same 16 leads
port=$("$bin/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
"$bin/transformers" serve "$model" --host 127.0.0.1 --port "$port" --device cpu > "$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 120); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 1; done
stage ingest-16-served -- "$ipt" ingest "$work/leads16.jsonl" --run-dir "$served" --num-shards 1 --no-progress
stage synthesize-openai -- \
  "$ipt" synthesize --run-dir "$served" --engine openai --model "$model" --tokenizer "$model" \
  --openai-base-urls "http://127.0.0.1:$port/v1" --openai-served-model-name "$model" \
  --no-openai-send-token-ids --openai-concurrency 4 --max-new-tokens 200 --num-rounds 1 --no-progress
kill "$serve_pid"; wait "$serve_pid" 2> /dev/null

stage ingest-200 -- "$ipt" ingest "$work/leads200.jsonl" --run-dir "$cpt" --no-progress
stage mix -- \
  "$ipt" mix --run-dir "$cpt" --recipe vanilla --name raw --tokenizer "$model" --no-progress
stage tokenize -- \
  "$ipt" tokenize --run-dir "$cpt" --variant raw --tokenizer "$model" --seq-len 256 --no-progress
stage continue -- \
  "$ipt" continue --run-dir "$cpt" --variant raw --init-from "$model" --num-steps 5 \
  --micro-batch-size 2 --lr 1e-5 --log-every 1 --no-progress
stage sft-lora -- \
  "$ipt" sft "$work/sft.jsonl" --run-dir "$cpt" --model "$model" --name sft-lora --lora-r 8 \
  --num-steps 5 --micro-batch-size 4 --seq-len 256 --no-progress
if [ "$chat" = "--chat" ]; then
  stage magpie -- \
    "$ipt" magpie --run-dir "$gen" --model "$model" --num-queries 8 --max-query-tokens 48 \
    --max-response-tokens 192 --no-progress
fi
echo "wrote $tsv"
