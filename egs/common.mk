# Stages shared by every recipe (egs/<corpus>/ASR/Makefile includes this file
# after setting CORPUS, CONFIG, EXP and TRAIN_SET/DEV_SET/TEST_SET, and then
# adds its own `prepare` rule, which writes $(call manifests,<set>) for each set).
#
#   fbank    80-dim fbank of every set             data/fbank/
#   noise    white/pink/brown noise and babble      data/noise/noise_cuts.jsonl.gz
#            for data.augment.noise_cuts (built before train when the config names it)
#   lang     BPE, lexicons, 3/4-gram LMs            data/lang_bpe_$(NBPE)/
#   graphs   HLG and HL                             data/lang_bpe_$(NBPE)/HLG.pt
#   train    $(NUM_EPOCHS) epochs, torchrun when WORLD_SIZE > 1
#   average  the last $(AVG) epochs in one file   $(EXP)/averaged-epoch-*.pt
#   tune     graph scale and word bonus of HL/HLG,  $(EXP)/decode/graph-weights-<set>.yaml
#            chosen on TUNE_SET (the dev set)
#   decode   every set of DECODE_SETS, METHODS    $(EXP)/decode/wer-summary-<set>.txt
#   stream-decode  chunked encoder + online search on STREAM_GRAPH, per chunk size
#            of STREAM_CHUNKS (causal models)     $(EXP)/decode/wer-summary-<set>-streaming.txt
#
# Each stage's outputs are make targets, so re-running skips what is up to date.
# No code lives here: stages call local/*.py, which call asrk2/.
SHELL := /bin/bash
# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine
# spinning threads slowed training several-fold.
export OMP_WAIT_POLICY ?= PASSIVE
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
PY ?= $(ROOT)/.venv/bin/python
LOCAL := $(ROOT)/local
NUM_JOBS ?= 2

cfg = $(shell $(PY) $(LOCAL)/config_value.py $(CONFIG) $(1))
NBPE ?= $(call cfg,lang.nbpe)
NUM_EPOCHS ?= $(call cfg,train.num_epochs)
AVG ?= $(call cfg,decode.avg)
# auto: kaldifeat/training/decoding on CUDA when torch sees a GPU; or cpu, cuda.
DEVICE ?= auto
# Training processes on this machine (GPUs, or CPU processes with gloo).
WORLD_SIZE ?= 1
# Extra local/compute_fbank.py options, e.g. "--chunk-size 10000" for big sets.
FBANK_OPTS ?=
# Extra local/prepare_lang.py options, e.g. LM size limits for a big corpus:
# "--max-ngrams 3=0,2000000,3000000" (see egs/gigaspeech/ASR/README.md).
LANG_OPTS ?=

DATA ?= data
LANG_DIR := $(DATA)/lang_bpe_$(NBPE)
SPLITS := $(TRAIN_SET) $(DEV_SET) $(TEST_SET)
DECODE_SETS ?= $(TEST_SET)
manifests = $(DATA)/manifests/$(CORPUS)_cuts_$(1).jsonl.gz
fbank = $(DATA)/fbank/$(CORPUS)_cuts_$(1).jsonl.gz
device_opt = $(if $(filter-out auto,$(DEVICE)),--device $(DEVICE))
train_launcher = $(if $(filter-out 1,$(WORLD_SIZE)),$(PY) -m torch.distributed.run \
  --standalone --nproc_per_node $(WORLD_SIZE),$(PY))

.PHONY: all prepare fbank noise lang graphs train average tune decode stream-decode clean
.DELETE_ON_ERROR:
.DEFAULT_GOAL := all

# Whether `all` (and a recipe's `demo`) also decode in streaming mode: only a
# causal encoder can, so by default the config's model.encoder.causal (True or
# False). Looked up once, and only when a target that needs it is built (the
# lookup starts Python, several seconds). Override: STREAMING=True/False.
STREAMING = $(eval STREAMING := $$(call cfg,model.encoder.causal))$(STREAMING)
streaming_if_causal = $(if $(filter True true 1,$(STREAMING)),stream-decode)

# Prerequisites with $$ are expanded when the target is built (second expansion).
.SECONDEXPANSION:
all: decode $$(streaming_if_causal)

fbank: $(foreach s,$(SPLITS),$(call fbank,$(s)))
$(DATA)/fbank/$(CORPUS)_cuts_%.jsonl.gz: $(DATA)/manifests/$(CORPUS)_cuts_%.jsonl.gz
	$(PY) $(LOCAL)/compute_fbank.py --cuts $< --output-dir $(DATA)/fbank --device $(DEVICE)$(if $(FBANK_OPTS), $(FBANK_OPTS))

# Generated noise for additive-noise augmentation; babble from training speech.
NOISE_CUTS := $(DATA)/noise/noise_cuts.jsonl.gz
noise: $(NOISE_CUTS)
$(NOISE_CUTS): $(call manifests,$(TRAIN_SET))
	$(PY) $(LOCAL)/make_noise.py --speech-cuts $< --out-dir $(dir $@)
# The noise manifest the config trains with (empty: none), looked up once.
CONFIG_NOISE = $(eval CONFIG_NOISE := $$(call cfg,data.augment.noise_cuts))$(CONFIG_NOISE)

PHONE_LANG_DIR := $(DATA)/lang_phone
LANG_FILES := bpe.model tokens.txt words.txt lexicon.txt L.pt L_disambig.pt G_3_gram.pt G_4_gram.pt

# BPE, lexicons and n-gram LMs; one run makes all of them.
lang: $(LANG_DIR)/G_4_gram.pt
$(addprefix $(LANG_DIR)/,$(LANG_FILES)) &: $(call manifests,$(TRAIN_SET))
	$(PY) $(LOCAL)/prepare_lang.py --cuts $< --lang-dir $(LANG_DIR) --nbpe $(NBPE) \
	  --phone-lang-dir $(PHONE_LANG_DIR)$(if $(LANG_OPTS), $(LANG_OPTS))

graphs: $(LANG_DIR)/HLG.pt
$(LANG_DIR)/HLG.pt $(LANG_DIR)/HL.pt &: $(LANG_DIR)/L_disambig.pt $(LANG_DIR)/G_3_gram.pt
	$(PY) $(LOCAL)/compile_graphs.py --lang-dir $(LANG_DIR)
	$(PY) $(LOCAL)/show_graph_sizes.py $(LANG_DIR)

train: $(EXP)/epoch-$(NUM_EPOCHS).pt
$(EXP)/epoch-$(NUM_EPOCHS).pt: $(CONFIG) $(call fbank,$(TRAIN_SET)) $(call fbank,$(DEV_SET)) $(LANG_DIR)/bpe.model \
  $$(CONFIG_NOISE)
	$(train_launcher) $(LOCAL)/train.py --config $(CONFIG) --lang-dir $(LANG_DIR) --exp-dir $(EXP) \
	  --train-cuts $(call fbank,$(TRAIN_SET)) --valid-cuts $(call fbank,$(DEV_SET)) \
	  --set lang.nbpe=$(NBPE) --set train.num_epochs=$(NUM_EPOCHS)$(if $(device_opt), $(device_opt))

# One file with the averaged weights (for export); decode.py averages by itself.
average: $(EXP)/averaged-epoch-$(NUM_EPOCHS)-avg-$(AVG).pt
$(EXP)/averaged-epoch-$(NUM_EPOCHS)-avg-$(AVG).pt: $(EXP)/epoch-$(NUM_EPOCHS).pt
	$(PY) $(LOCAL)/average.py --exp-dir $(EXP) --epoch $(NUM_EPOCHS) --avg $(AVG) --out $@

# Graph weights of HL/HLG decoding (a scale of the graph's scores and a bonus
# per word, Kaldi's LMWT and word_ins_penalty; local/tune_graph_weights.py),
# chosen by the HLG 1-best on TUNE_SET and read by decode and stream-decode.
# TUNE_SET= decodes with the graph as compiled.
TUNE_SET ?= $(DEV_SET)
# Extra local/tune_graph_weights.py options, e.g. "--word-bonuses 0 2 4".
TUNE_OPTS ?=
tuned_weights = $(if $(TUNE_SET),$(EXP)/decode/graph-weights-$(TUNE_SET).yaml)
weights_opt = $(if $(tuned_weights),--config $(tuned_weights))
tune: $(tuned_weights)
$(EXP)/decode/graph-weights-%.yaml: $(EXP)/epoch-$(NUM_EPOCHS).pt $(call fbank,%) \
  $(LANG_DIR)/HLG.pt
	$(PY) $(LOCAL)/tune_graph_weights.py --exp-dir $(EXP) --lang-dir $(LANG_DIR) \
	  --cuts $(call fbank,$*) --epoch $(NUM_EPOCHS) --avg $(AVG) --out $@ \
	  $(strip $(device_opt) $(TUNE_OPTS))

# Decoding methods (see local/decode.py --help); each writes recogs-/errs- files.
METHODS ?= ctc-greedy hlg-1best nbest-rescoring
decode: $(foreach s,$(DECODE_SETS),$(EXP)/decode/wer-summary-$(s).txt)
$(EXP)/decode/wer-summary-%.txt: $(EXP)/epoch-$(NUM_EPOCHS).pt $(call fbank,%) \
  $(LANG_DIR)/HLG.pt $(tuned_weights)
	$(PY) $(LOCAL)/decode.py --exp-dir $(EXP) --lang-dir $(LANG_DIR) \
	  --cuts $(call fbank,$*) --test-set $* --epoch $(NUM_EPOCHS) --avg $(AVG) \
	  $(addprefix --method ,$(METHODS)) $(strip $(device_opt) $(weights_opt))

# Streaming: chunk-by-chunk encoder (CtcModel.forward_chunk) and k2's online
# intersection, one stream per cut, STREAM_NUM_STREAMS cuts batched, 1 thread
# (see local/stream_decode.py). HLG by default: on the demo it gives a far
# lower WER than H (as hlg-1best beats ctc-greedy offline) at a real-time
# factor still far below 1 (bench/RESULTS.md). With HL/HLG local/stream_decode.py
# takes the final result of a stream from one intersection of all its streamed
# log-probs (k2 1.23.4's online intersecter drops words that span a chunk
# boundary); partial results stay online.
STREAM_GRAPH ?= HLG
# Chunk sizes in output frames (40 ms each after x4 subsampling): 16 = 640 ms.
STREAM_CHUNKS ?= 16
# Attention cache in output frames (64 = 2.56 s); bounded, so that streams
# that started at different times batch together.
STREAM_LEFT_CONTEXT ?= 64
STREAM_NUM_STREAMS ?= 8
STREAM_SETS ?= $(DECODE_SETS)
# Extra local/stream_decode.py options, e.g. "--online-fbank".
STREAM_OPTS ?=
stream_graph_file = $(if $(filter H,$(STREAM_GRAPH)),bpe.model,$(STREAM_GRAPH).pt)
stream_opts = $(addprefix --chunk-size ,$(STREAM_CHUNKS)) \
  --left-context-frames $(STREAM_LEFT_CONTEXT) --num-streams $(STREAM_NUM_STREAMS) \
  $(device_opt) $(STREAM_OPTS)
stream-decode: $(foreach s,$(STREAM_SETS),$(EXP)/decode/wer-summary-$(s)-streaming.txt)
# (Make prefers this rule over wer-summary-%.txt above: its stem is shorter.)
$(EXP)/decode/wer-summary-%-streaming.txt: $(EXP)/epoch-$(NUM_EPOCHS).pt $(call fbank,%) \
  $(LANG_DIR)/$(stream_graph_file) $(tuned_weights)
	@test -n "$(streaming_if_causal)" || { echo "stream-decode needs a causal encoder:" \
	  "model.encoder.causal is $(STREAMING) in $(CONFIG) (or STREAMING=$(STREAMING))" >&2; exit 1; }
	$(PY) $(LOCAL)/stream_decode.py --exp-dir $(EXP) --lang-dir $(LANG_DIR) \
	  --cuts $(call fbank,$*) --test-set $* --epoch $(NUM_EPOCHS) --avg $(AVG) \
	  --graph $(STREAM_GRAPH) $(strip $(stream_opts) $(weights_opt))

clean:
	rm -rf $(DATA) exp
