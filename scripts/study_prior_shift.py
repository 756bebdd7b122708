"""Does adapting a calibration to unlabelled traffic (`calibrate --adapt BASE --unlabelled`) keep
its quality promise when the traffic's base rate differs?

`simulate` (the default) reads only GSM8K's first 1,100 items, the items the shipped calibrations
were fitted on. Each of --cuts (300) random cuts fits a calibrator (the default rule's features) on
half of them, with thresholds and threshold table as `bench report` makes them, and plays traffic
from the other half: --size drafts drawn with a chosen share of right ones (the label shift the
method assumes: right and wrong drafts keep their looks, only their mix changes), from 12% (harder
traffic than the calibration's 25.5%) to 35% (easier). On each, the calibrated rule as fitted, the
same rule adapted to that traffic's unlabelled drafts, and the baselines with thresholds chosen on
the fitting half are judged against 95% of the 1.5B's accuracy on that traffic; so is the rule
adapted with labels (`calibrate --adapt BASE`) to --labels of the traffic's drafts.

`fresh` judges the shipped calibrations on GSM8K's items 1,100-1,318, where the 0.5B was right on
16.9% of items against 25.5% of the first 1,100 and every calibrated threshold missed the target.
Their labels have been read before (by `bench report --fresh-from gsm8k=1100` and the studies in
docs/benchmarks.md), so this is not a clean test; what it adds is whether an estimate made without their
labels moves the thresholds the right way on real, not simulated, shifted traffic. It adapts on
all 219 drafts (a deployment adapting to the traffic it serves) and, as past traffic for future
traffic, on the first K and judges the rest.

`symbolic` is a clean test, planned before any of its labels was read: the same judgement on
`bench/datasets/gsm-symbolic.jsonl` (`scripts/make_gsm_symbolic.py`: 170 GSM8K-shaped problems,
two fresh instances of each of 85 GSM-Symbolic templates, traced by `edgecascade bench run
--dataset bench/datasets/gsm-symbolic.jsonl --config calibrated`). The plan, fixed in the commit
that adds this mode: nothing is fitted, chosen or changed on these items. Judged are both shipped
calibrations as shipped and adapted without labels (on all 170 drafts; and on the 85 first
instances, judged on the 85 second ones), against the baselines with thresholds chosen on GSM8K's
first 1,100 items and the oracle; the target is 95% of the 1.5B's accuracy on the judged items;
the issue's bar is the target met while keeping at least the best baseline that met it plus half
its gap to the oracle. Also printed: each score's AUROC on these items. Whatever comes out is
reported; a change made after reading it must be judged on instances not yet drawn (the generator
draws any number, with another seed). `symbolic --dataset bench/datasets/gsm-symbolic-2.jsonl`
judges a second draw (85 items, the third instance of each template) by the same plan, fixed in the
commit that adds that file, before its traces were read. It has no first-K part, and its
adaptation on all 85 drafts goes below the 100 that `calibrate --unlabelled` asks for (the
estimate's standard error is printed with it). Changes to the plan, made after the first draw
was read and before any of the second's traces was read: random routing (at the share `bench
report` chooses, judged in expectation) joins the baselines the bar is measured from, which can
only raise the bar; and two more readings are printed, the gap to the budget oracle and the bar the
baselines would set with thresholds chosen in hindsight on the judged items.

`symbolic --dataset bench/datasets/gsm-symbolic-3.jsonl` judges a third draw (170 items: the
fourth and fifth instances of each template, `make_gsm_symbolic.py --instances 3 5`) by this plan
as it stands, fixed in the commit that adds that file, before it was traced: the first-K part
adapts on the 85 fourth instances and judges the 85 fifth ones. Because one draw's verdict turns
on one or two answers, the main reading of the shipped rules is the three draws pooled (`--dataset`
all three files, 425 items, `--k 255`: adapted on the first two draws, judged on the third). A
calibration changed after this commit is fitted and its thresholds chosen on GSM8K's first 1,100
items alone, committed before this draw's traces are read, and judged on this draw by the same
study, next to the files shipped now.

`symbolic --dataset bench/datasets/gsm-symbolic-4.jsonl` judges a fourth draw (85 items, the sixth
instance of each template, `--instances 5 6`) by the same plan, fixed in the commit that adds that
file, before it was traced and after the third draw was read; no calibration changed. Its main
reading is all four draws pooled (`--dataset` the four files, 510 items, `--k 425`: adapted on the
first three draws, judged on the fourth).

`symbolic --dataset bench/datasets/gsm-symbolic-5.jsonl` and `… gsm-symbolic-6.jsonl` judge a fifth
and a sixth draw (85 items each: the seventh and the eighth instance of each template,
`--instances 6 7` and `--instances 7 8`) by the same plan, fixed in the commit that adds both files,
before either was traced and after the fourth draw was read; no calibration changed. The fifth is
traced first (`bench run --config calibrated`), then the sixth; neither is read until both are
traced, or until the sixth is given up, which happens only if the session's time runs short (its
tracing must end by 22:10 UTC on 2026-11-26, to leave time to report), never because of what a
trace shows. The main reading is every traced draw pooled, in the order of their numbers (680 items
with the sixth, else 595), with `--k 510`: adapted without labels on the first four draws' drafts
(a deployment adapting to the traffic it has served) and judged on the new draws; each new draw is
also read alone. Added to this plan after the fourth draw was read and before any trace of the fifth
or sixth was (in the commit that adds `estimates`): `estimates --dataset` the six files (or five)
prints, on each draw and on them pooled, the share of right drafts against the two estimates made
without labels, the label-shift one (which fell 3.6-13.2 points low on GSM8K's fresh items and on each
of draws 1-4) and the calibrator's unshifted mean P(correct) (within 4.4 points on each, and
closer on 11 of those 12 readings), and a covariate-shift threshold (tried, not shipped: on those
12 readings it met the target 6 times, the shipped thresholds 7) beside the shipped
one. Expected, and judged: the unshifted mean P closer to the truth than the label-shift estimate
on each new draw and on the pool, for both calibrations.

`symbolic --dataset bench/datasets/gsm-symbolic-7.jsonl` judges a seventh draw (85 items, the ninth
instance of each template, `--instances 8 9`) by the same plan, fixed in the commit that adds that
file, after the fifth and sixth draws were read and before it was traced; no calibration changed.
Its tracing must end by 22:25 UTC on 2026-11-26; if it does not, or if the time left after it is too
short to report it, it is not read at all and stays a clean test for a later session. If read, its
main reading is the seven draws pooled (765 items, `--k 680`: adapted without labels on the first
six draws, judged on the seventh), with the draw alone and `estimates` on the seven files beside it.

`symbolic --dataset bench/datasets/gsm-symbolic-8.jsonl` and `… gsm-symbolic-9.jsonl` judge an eighth
and a ninth draw (85 items each: the tenth and the eleventh instance of each template, `--instances
9 10` and `--instances 10 11`) by the same plan, fixed in the commit that adds both files, after the
seventh draw was read and before either was traced; no calibration changed. The eighth is traced
first, then the ninth; neither is read until both are traced, or until the ninth is given up, which
happens only if its tracing has not ended by 01:25 UTC on 2026-11-27 (to leave time to report),
never because of what a trace shows; a draw given up is not read and stays clean for a later
session. The main reading is every traced draw pooled in the order of their numbers (935 items with
the ninth, else 850) with `--k 765`: adapted without labels on the first seven draws' drafts and
judged on the new ones; each new draw is also read alone, and `estimates` on every traced file.
Expected, from the seven draws read: both shipped rules meet the target pooled, the cross-check one
keeping more drafts than the bar and the default near it; the unshifted mean P(correct) nearer the
share right than the label-shift estimate, on each new draw and on the pool.

`symbolic --dataset bench/datasets/gsm-symbolic-10.jsonl` judges a tenth draw (85 items, the twelfth
instance of each template, `--instances 11 12`) by the same plan, fixed in the commit that adds that
file, after the eighth and ninth draws were read and before it was traced; no calibration changed.
It is traced by the session that adds it, which does not read it (it ends too soon to report it);
its traces are committed unread, and a later session reads it. The main reading is the ten draws
pooled (1,020 items, `--k 935`: adapted without labels on the first nine draws, judged on the
tenth), with the draw alone and `estimates` on the ten files beside it. If its traces are not
whole, the later session completes them with the same `bench run` (a rerun only adds what is
missing) before reading any of them.

`symbolic --dataset bench/datasets/gsm-symbolic-11.jsonl` and `… gsm-symbolic-12.jsonl` judge an
eleventh and a twelfth draw (85 items each: the thirteenth and the fourteenth instance of each
template, `--instances 12 13` and `--instances 13 14`) by the same judgement, fixed in the commit that
adds both files, after the tenth draw was read (and the `--bootstrap` reading made) and before either
was traced. No calibration changed; the cross-check's program filter became an allowlist, which
passes every program traced before that gave a number, and these draws are traced with it. The
eleventh is traced first (`bench run --config calibrated`), then the twelfth; neither is read until
both are traced, or until the twelfth is given up, which happens only if its tracing has not ended
by 04:15 UTC on 2026-11-27 (to leave time to report), never because of what a trace shows; a draw
given up is not read and stays clean for a later session. The main reading is the two new draws
pooled (170 items, `symbolic --bootstrap 2000 --dataset` both files: items no rule was chosen on,
judged together), with each alone, the twelve draws pooled (1,190 items, `--k 1020`: adapted without
labels on the first ten draws, judged on the two new ones) and `estimates` on the twelve files beside
it. Expected, from the ten draws read and their resampling: on the 170 new items the default rule
meets the target and keeps more drafts than the best baseline that meets it; whether it reaches the
issue's bar is a toss-up leaning no (it did in 24% of resamples of the ten); the cross-check rule
keeps more drafts than the default; the unshifted mean P(correct) is nearer the share right than
the label-shift estimate on each new reading (it was on 30 of 32 before).

`symbolic --dataset bench/datasets/gsm-symbolic-13.jsonl` and `… gsm-symbolic-14.jsonl` judge a
thirteenth and a fourteenth draw (85 items each: the fifteenth and the sixteenth instance of each
template, `--instances 14 15` and `--instances 15 16`) by the same judgement, fixed in the commit
that adds both files, after the twelfth draw was read and before either was traced. No calibration
and no check changed. One item is not new: the fourteenth draw's `t26-15` states the same problem
as the sixth draw's `t26-7` (a template with few numbers to draw), read before; it stays, as the
generator drew it, and is named here so that nobody counts it as unseen. The thirteenth is traced
first (`bench run --config calibrated`), then the fourteenth; neither is read until both are traced,
or until the fourteenth is given up, which happens only if its tracing has not ended by 06:50 UTC on
2026-11-27 (to leave time to report), never because of what a trace shows; a draw given up is not
read and stays clean for a later session, and the thirteenth is then read alone. The main reading
is the new draws pooled (170 items, or the thirteenth's 85, `symbolic --bootstrap 2000 --dataset`
the new files), with each alone, every traced draw pooled (1,360 items, or 1,275, `--k 1190`:
adapted without labels on the first twelve draws, judged on the new ones) and `estimates` on every
traced file beside it. Expected, from the twelve draws read and their resampling: on the new items
both rules meet the target (the default did in 100% of resamples of the twelve, the cross-check
rule in 91%); the default does not reach the issue's bar (it did in 20% of resamples); the
cross-check rule keeps more drafts than the default, and reaching the bar is a toss-up for it (61%);
the unshifted mean P(correct) is nearer the share right than the label-shift estimate on each new
reading (36 of 38 before).

`symbolic --dataset bench/datasets/gsm-symbolic-15.jsonl` judges a fifteenth draw (85 items: the
seventeenth instance of each template, `--instances 16 17`) by the same judgement, fixed in the
commit that adds the file, after the fourteenth draw was read and before it was traced. No
calibration and no check changed (the one change since, a study script, touches neither). No item
repeats an earlier draw's problem (checked by prompt against all fourteen files). It is traced with
`bench run --config calibrated` and not read until its tracing ends, or at all if its tracing has
not ended by 09:10 UTC on 2026-11-27 (to leave time to report), in which case it stays clean for a
later session; never given up because of what a trace shows. The main reading is the draw alone
(85 items, `symbolic --bootstrap 2000 --dataset` the file), with every traced draw pooled (1,445
items, `--k 1360`: adapted without labels on the first fourteen draws, judged on the new one) and
`estimates` on the fifteen files beside it. Expected, from the fourteen draws read and their
resampling: the default rule meets the target (it did in 100% of resamples of the fourteen, the
cross-check rule in 93%, and on 12 and 10 of the 14 draws alone); whether either reaches the
issue's bar on one draw of 85 is a toss-up (30% and 59% of resamples of the fourteen; draws alone
have swung both ways); pooled over fifteen, neither reaches the bar, as over fourteen; the unshifted
mean P(correct) is nearer the share right than the label-shift estimate on each new reading (42 of
44 before).

`symbolic --dataset bench/datasets/gsm-symbolic-16.jsonl` judges a sixteenth draw (85 items: the
eighteenth instance of each template, `--instances 17 18`) by the same judgement, fixed in the
commit that adds the file, after the fifteenth draw was read and before it was traced. No
calibration and no check changed. No item repeats an earlier draw's problem (checked by prompt
against all fifteen files). It is traced with `bench run --config calibrated` and not read until
its tracing ends; if its tracing has not ended by 09:35 UTC on 2026-11-27 (to leave time to
report), its traces so far are committed unread, the draw stays clean, and a later session
completes them with the same `bench run` before reading any of them; never given up because of
what a trace shows. The main reading is the draw alone (85 items, `symbolic --bootstrap 2000
--dataset` the file), with every traced draw pooled (1,530 items, `--k 1445`) and `estimates` on
the sixteen files beside it. Expected, from the fifteen draws read and their resampling: the
default rule meets the target (it did in 99% of resamples of the fifteen, the cross-check rule in
92%, and on 12 and 10 of the 15 draws alone); whether either reaches the issue's bar on one draw
of 85 is a toss-up; pooled over sixteen, neither reaches the bar, as over fifteen (32% and 50% of
resamples); the unshifted mean P(correct) is nearer the share right than the label-shift estimate
on each new reading (46 of 48 before).

`symbolic --dataset bench/datasets/gsm-symbolic-17.jsonl` judges a seventeenth draw (85 items: the
nineteenth instance of each template, `--instances 18 19`) by the same judgement, fixed in the
commit that adds the file, after the sixteenth draw was read and before it was traced. No
calibration and no check changed (the one change since, a study script, touches neither). No item
repeats an earlier draw's problem (checked by prompt against all sixteen files). It is traced with
`bench run --config calibrated` and not read until its tracing ends; if its tracing has not ended
by 12:00 UTC on 2026-11-27, its traces so far are committed unread, the draw stays clean, and a
later session completes them with the same `bench run` before reading any of them; never given up
because of what a trace shows. The main reading is the draw alone (85 items, `symbolic --bootstrap
2000 --dataset` the file), with every traced draw pooled (1,615 items, `--k 1530`) and `estimates`
on the seventeen files beside it. Expected, from the sixteen draws read and their resampling: the
default rule meets the target (it did in 100% of resamples of the sixteen, the cross-check rule in
94%, and on 13 and 11 of the 16 draws alone); whether either reaches the issue's bar on one draw of
85 is a toss-up; pooled over seventeen, neither reaches the bar, as over sixteen (22% and 40% of
resamples); the unshifted mean P(correct) is nearer the share right than the label-shift estimate
on each new reading (50 of 52 before).

`symbolic --dataset bench/datasets/gsm-symbolic-18.jsonl` judges an eighteenth draw (84 items: the
twentieth instance of each template, `--instances 19 20`, less one) by the same judgement, fixed in
the commit that adds the file, after the seventeenth draw was read and before it was traced. No
calibration and no check changed. The generator's `t06-19` states the tenth draw's `t06-11` again
(a template with few numbers to draw), so it is left out of the file; no other item repeats an
earlier draw's problem (checked by prompt against all seventeen files, and by
`tests/unit/test_datasets.py`). It is traced with `bench run --config calibrated` and not read until
its tracing ends; if its tracing has not ended by 12:05 UTC on 2026-11-27, its traces so far are
committed unread, the draw stays clean, and a later session completes them with the same `bench
run` before reading any of them; never given up because of what a trace shows. The main reading is
the draw alone (84 items, `symbolic --bootstrap 2000 --dataset` the file), with every traced draw
pooled (1,699 items, `--k 1615`) and `estimates` on the eighteen files beside it. Expected, from the
seventeen draws read and their resampling: the default rule meets the target (it did in 100% of
resamples of the seventeen, the cross-check rule in 97%, and on 14 and 12 of the 17 draws alone);
whether either reaches the issue's bar on one draw of 84 is a toss-up; pooled over eighteen,
neither reaches the bar, as over seventeen (26% and 46% of resamples); the unshifted mean
P(correct) is nearer the share right than the label-shift estimate on each new reading (54 of 56
before).

`symbolic --dataset bench/datasets/gsm-symbolic-19.jsonl` judges a nineteenth draw (85 items: the
twenty-first instance of each template, `--instances 20 21`) by the same judgement, fixed in the
commit that adds the file, after the eighteenth draw was read and before it was traced. No
calibration changed. One check was added since (`arithmetic`, which rejects a draft whose final
number comes only from a sum it got wrong); this study judges by the calibrated score and its
threshold alone, as before, so the check does not enter the reading (`scripts/study_arithmetic_check.py`
counts what it changes for a config's own rule: on the eighteen draws, nothing). No item repeats an
earlier draw's problem (checked by prompt against all eighteen files, and by
`tests/unit/test_datasets.py`). It is traced with `bench run --config calibrated` and not read until
its tracing ends; if its tracing has not ended by 14:40 UTC on 2026-11-27, its traces so far are
committed unread, the draw stays clean, and a later session completes them with the same `bench
run` before reading any of them; never given up because of what a trace shows. The main reading is
the draw alone (85 items, `symbolic --bootstrap 2000 --dataset` the file), with every traced draw
pooled (1,784 items, `--k 1699`) and `estimates` on the nineteen files beside it. Expected, from the
eighteen draws read and their resampling: the default rule meets the target (it did in 100% of
resamples of the eighteen, the cross-check rule in 99%, and on 15 and 13 of the 18 draws alone);
whether either reaches the issue's bar on one draw of 85 is a toss-up; pooled over nineteen,
neither reaches the bar, as over eighteen (21% and 49% of resamples); the unshifted mean
P(correct) is nearer the share right than the label-shift estimate on each new reading (58 of 60
before).

`symbolic --dataset bench/datasets/gsm-symbolic-20.jsonl` judges a twentieth draw (85 items: the
twenty-second instance of each template, `--instances 21 22`) by the same judgement, fixed in the
commit that adds the file, after the nineteenth draw was read and before it was traced. No
calibration, feature, check or threshold changed since the nineteenth draw (this session's changes
are to errors, configs, the trace store and two studies read on other items; the checks now read a
conversation's last user message, which for these one-message prompts is the prompt as before). No
item repeats an earlier draw's problem (checked by prompt against all nineteen files, and by
`tests/unit/test_datasets.py`). It is traced with `bench run --config calibrated` and not read until
its tracing ends; if its tracing has not ended by 16:10 UTC on 2026-11-27, its traces so far are
committed unread, the draw stays clean, and a later session completes them with the same `bench
run` before reading any of them; never given up because of what a trace shows. The main reading is
the draw alone (85 items, `symbolic --bootstrap 2000 --dataset` the file), with every traced draw
pooled (1,869 items, `--k 1784`) and `estimates` on the twenty files beside it. Expected, from the
nineteen draws read and their resampling: the default rule meets the target (it did in 100% of
resamples of the nineteen, the cross-check rule in 100%, and on 16 and 14 of the 19 draws alone);
whether either reaches the issue's bar on one draw of 85 is a toss-up; pooled over twenty, neither
reaches the bar, as over nineteen (17% and 46% of resamples); the unshifted mean P(correct) is
nearer the share right than the label-shift estimate on each new reading (62 of 64 before).

`symbolic --dataset bench/datasets/gsm-symbolic-21.jsonl` judges a twenty-first draw (85 items: the
twenty-third instance of each template, `--instances 22 23`) by the same judgement, fixed in the
commit that adds the file, after the twentieth draw was read and before it was traced. No
calibration, feature, check or threshold changed since the twentieth draw (nothing in the package
changed since then). No item repeats an earlier draw's problem (checked by prompt against all twenty
files, and by `tests/unit/test_datasets.py`). It is traced with `bench run --config calibrated` and
not read until its tracing ends; if its tracing has not ended by 19:00 UTC on 2026-11-27, its traces
so far are committed unread, the draw stays clean, and a later session completes them with the same
`bench run` before reading any of them; never given up because of what a trace shows. The main
reading is the draw alone (85 items, `symbolic --bootstrap 2000 --dataset` the file), with every
traced draw pooled (1,954 items, `--k 1869`) and `estimates` on the twenty-one files beside it.
Expected, from the twenty draws read and their resampling: the default rule meets the target (it did
in 100% of resamples of the twenty, the cross-check rule in 100%, and on 17 and 15 of the 20 draws
alone); whether either reaches the issue's bar on one draw of 85 is a toss-up; pooled over
twenty-one, neither reaches the bar, as over twenty (17% and 47% of resamples); the unshifted mean
P(correct) is nearer the share right than the label-shift estimate on each new reading (66 of 68
before).

A change of method, made after that plan was committed and before the twenty-first draw was read: a
review of these statistics found that `--bootstrap` and the AUROC intervals drew items one by one,
while a pooled reading holds about 22 instances of each of the same 85 templates, and whether the
0.5B is right depends much on the template (within a template its rightness correlates at 0.43).
Both now draw whole templates with all their instances (`template`, `resample_groups`). A single
draw holds one instance per template and is drawn exactly as before, so the twenty-first draw's own
reading is unchanged; the pooled readings' resampled shares and AUROC intervals are wider, and the
twenty draws pooled are read again with them beside the twenty-one. The plan's "17% and 47% of
resamples" are the item-by-item figures.

`symbolic --dataset bench/datasets/gsm-symbolic-22.jsonl --k 84` judges a twenty-second draw (84
items: the twenty-fourth instance of each template, `--instances 23 24`, less one) by the same
judgement, fixed in the commit that adds the file, after the twenty-first draw was read and before
it was traced. No calibration, feature, check or threshold changed since the twenty-first draw (this
session's changes are to the engine's timing and errors, the remote providers, the in-process
provider's threads and cancellation, model pulls and set-up; greedy decoding runs the same calls).
The generator's `t53-23` states the first draw's `t53-1` again, so it is left out of the file; no
other item repeats an earlier draw's problem (checked by prompt against all twenty-one files, and by
`tests/unit/test_datasets.py`). It is traced with `bench run --config calibrated` and not read until
its tracing ends; if its tracing has not ended by 19:00 UTC on 2026-11-27, its traces so far are
committed unread, the draw stays clean, and a later session completes them with the same `bench
run` before reading any of them; never given up because of what a trace shows. The main reading is
the draw alone (84 items, `symbolic --bootstrap 2000 --dataset` the file `--k 84`), with every traced
draw pooled (2,038 items, `--k 1954`, templates resampled) and `estimates` on the twenty-two files
beside it. Expected, from the twenty-one draws read and their resampling by template: the default
rule meets the target (it did in 98% of resamples of the twenty-one, the cross-check rule in 88%,
and on 17 and 15 of the 21 draws alone); whether either reaches the issue's bar on one draw of 84 is
a toss-up; pooled over twenty-two, the default does not reach the bar (it did in 37% of resamples)
and whether the cross-check rule does is a toss-up (it sits on it, 60%); the unshifted mean
P(correct) is nearer the share right than the label-shift estimate on each new reading (69 of 72
before).

`symbolic --dataset bench/datasets/gsm-symbolic-23.jsonl` judges a twenty-third draw (85 items: the
twenty-fifth instance of each template, `--instances 24 25`) by the same judgement, fixed in the
commit that adds the file, after the twenty-second draw was read and before it was traced. No
calibration, feature, check or threshold changed since the twenty-second draw. No item repeats an
earlier draw's problem (checked by prompt against all twenty-two files, and by
`tests/unit/test_datasets.py`). It is traced with `bench run --config calibrated` and not read until
its tracing ends; if its tracing has not ended by 20:30 UTC on 2026-11-27, its traces so far are
committed unread, the draw stays clean, and a later session completes them with the same `bench
run` before reading any of them; never given up because of what a trace shows. The main reading is
the draw alone (85 items, `symbolic --bootstrap 2000 --dataset` the file), with every traced draw
pooled (2,123 items, `--k 2038`, templates resampled) and `estimates` on the twenty-three files
beside it. Expected, from the twenty-two draws read and their resampling by template: the default
rule meets the target (it did in 99% of resamples of the twenty-two, the cross-check rule in 90%,
and on 18 and 16 of the 22 draws alone); whether either reaches the issue's bar on one draw of 85 is
a toss-up; pooled over twenty-three, the default does not reach the bar (it did in 28% of
resamples) and whether the cross-check rule does is a toss-up (it is two drafts short, 53%); the
unshifted mean P(correct) is nearer the share right than the label-shift estimate on each new
reading (73 of 76 before).

`symbolic --dataset bench/datasets/gsm-symbolic-24.jsonl` judges a twenty-fourth draw (85 items: the
twenty-sixth instance of each template, `--instances 25 26`), the first clean draw of the
calibrations refitted after the grading fix (0c0e8c7: two of GSM8K's 1,100 fitted labels corrected;
math thresholds 0.5288 and 0.4636), by the same judgement, fixed in the commit that adds the file,
after the twenty-three draws were read again with those calibrations and before it is traced. No
calibration, feature, check or threshold changes before it is read. No item repeats an earlier
draw's problem (checked by prompt against all twenty-three files, and by
`tests/unit/test_datasets.py`). It is traced with `bench run --config calibrated` and not read until
its tracing ends; if its tracing has not ended by 21:00 UTC on 2026-11-27, its traces so far are
committed unread, the draw stays clean, and a later session completes them with the same `bench
run` before reading any of them; never given up because of what a trace shows. The main reading is
the draw alone (85 items, `symbolic --bootstrap 2000 --dataset` the file), with every traced draw
pooled (2,208 items, `--k 2123`, templates resampled) and `estimates` on the twenty-four files
beside it. Expected, from the twenty-three draws read again with the refitted calibrations and their
resampling by template: the default rule meets the target (it did on 21 of the 23 draws alone and in
99% of template resamples; the cross-check rule on 18 and in 97%); whether either reaches the
issue's bar on one draw of 85 is a toss-up; pooled over twenty-four, neither reaches the bar (it did
in 20% and 34% of resamples); the unshifted mean P(correct) is nearer the share right than the
label-shift estimate on each new reading (47 of 50 in the refitted run).

`symbolic --dataset bench/datasets/gsm-symbolic-25.jsonl` judges a twenty-fifth draw (85 items: the
twenty-seventh instance of each template, `--instances 26 27`), the second clean draw of the
refitted calibrations, by the same judgement, fixed in the commit that adds the file, after the
twenty-fourth draw was read and before it is traced. No calibration, feature, check or threshold
changes before it is read. No item repeats an earlier draw's problem (checked by prompt against all
twenty-four files, and by `tests/unit/test_datasets.py`). It is traced with `bench run --config
calibrated` and not read until its tracing ends. Its tracing starts at about 20:40 UTC on 2026-11-27
and will not end in this session: at 21:15 UTC its traces so far are committed unread, the draw
stays clean, and a later session completes them with the same `bench run` (which traces only what
is missing) before reading any of them; never given up because of what a trace shows. The main
reading is the draw alone (85 items, `symbolic --bootstrap 2000 --dataset` the file), with every
traced draw pooled (2,293 items, `--k 2208`, templates resampled) and `estimates` on the
twenty-five files beside it. Expected, from the twenty-four draws read with the refitted
calibrations: the default rule meets the target (it did on 22 of 24 draws alone and in 99% of
template resamples; the cross-check rule on 19 and in 97%); whether either reaches the issue's bar
on one draw of 85 is a toss-up; pooled over twenty-five, neither reaches the bar (17% and 31% of
resamples); the unshifted mean P(correct) is nearer the share right than the label-shift estimate
on each new reading.

`symbolic --dataset bench/datasets/gsm-symbolic-26.jsonl --k 84` judges a twenty-sixth draw (84
items: the twenty-eighth instance of each template, `--instances 27 28`, less one), the third clean
draw of the refitted calibrations, by the same judgement, fixed in the commit that adds the file,
after the twenty-fifth draw was read and before it is traced. No calibration, feature, check or
threshold changes before it is read (the code-features change of fe7d926, made before this plan,
reads only code drafts). The generator's `t53-27` states the sixteenth draw's `t53-17` again, so it
is left out of the file; no other item repeats an earlier draw's problem (checked by prompt against
all twenty-five files, and by `tests/unit/test_datasets.py`). It is traced with `bench run --config
calibrated` and not read until its tracing ends; if its tracing has not ended by 23:30 UTC on
2026-11-27, its traces so far are committed unread, the draw stays clean, and a later session
completes them with the same `bench run` before reading any of them; never given up because of what
a trace shows. The main reading is the draw alone (84 items, `symbolic --bootstrap 2000 --k 84
--dataset` the file), with every traced draw pooled (2,377 items, `--k 2293`, templates resampled)
and `estimates` on the twenty-six files beside it. Expected, from the twenty-five draws read with the
refitted calibrations: the default rule meets the target (it did on 23 of 25 draws alone and in 99%
of template resamples; the cross-check rule on 20 and in 97%); whether either reaches the issue's
bar on one draw of 84 is a toss-up; pooled over twenty-six, neither reaches the bar (19% and 34% of
resamples); the unshifted mean P(correct) is nearer the share right than the label-shift estimate
on each new reading.

`symbolic --dataset bench/datasets/gsm-symbolic-27.jsonl --k 84` judges a twenty-seventh draw (84
items: the twenty-ninth instance of each template, `--instances 28 29`, less one), the first clean
draw of the calibrations refitted after the answer-parser fix (a89733e: math thresholds 0.5020, and
0.4495 with the cross-check), by the same judgement, fixed in the commit that adds the file, after
the twenty-six draws were read again with those calibrations and before it is traced. No
calibration, feature, check or threshold changes before it is read. The generator's `t52-28`
states the second draw's `t52-2` again, so it is left out of the file; no other item repeats an
earlier draw's problem (checked by prompt against all twenty-six files, and by
`tests/unit/test_datasets.py`). It is traced with `bench run --config calibrated` and not read until
its tracing ends. Its tracing starts at about 23:15 UTC on 2026-11-27 and may not end in this
session: at 00:10 UTC its traces so far are committed unread, the draw stays clean, and a later
session completes them with the same `bench run` (which traces only what is missing) before reading
any of them; never given up because of what a trace shows. The main reading is the draw alone (84
items, `symbolic --bootstrap 2000 --k 84 --dataset` the file), with every traced draw pooled (2,461
items, `--k 2377`, templates resampled) and `estimates` on the twenty-seven files beside it.
Expected, from the twenty-six draws read again with these calibrations (a re-look): whether either
rule meets the target on one draw of 84 is close to a toss-up leaning to met (each met it on 20 of
26 draws, and in 96% and 91% of template resamples pooled); whether either reaches the issue's bar
on one draw is a toss-up; pooled over twenty-seven, the cross-check rule more likely than not reaches
the bar (it did in 64% of resamples) and the default does not (37%); the unshifted mean P(correct) is nearer the share
right than the label-shift estimate on each new reading (55 of 56 in the re-look).

`symbolic --dataset bench/datasets/gsm-symbolic-28.jsonl --k 84` and `symbolic --dataset
bench/datasets/gsm-symbolic-29.jsonl` judge a twenty-eighth and a twenty-ninth draw (84 items: the
thirtieth instance of each template, `--instances 29 30`, less one; 85 items: the thirty-first,
`--instances 30 31`), the second and third clean draws of the calibrations refitted after the
answer-parser fix, by the same judgement, fixed in the commit that adds both files, after the
twenty-seventh draw was read and before either is traced. No calibration, feature, check or
threshold changes before they are read. The generator's `t26-29` states the third draw's `t26-4`
again, so it is left out of the twenty-eighth file; no other item repeats an earlier draw's problem
(checked by prompt against all twenty-seven files and each other, and by
`tests/unit/test_datasets.py`). Both are traced with `bench run --config calibrated`, the
twenty-eighth first, and neither is read until both tracings end. Tracing starts at about 00:45 UTC
on 2026-11-28; if it has not ended by 02:30 UTC, the traces so far are committed unread, both draws
stay clean, and a later session completes them with the same `bench run` (which traces only what is
missing) before reading any of them; never given up because of what a trace shows. The main
readings are each draw alone (`symbolic --bootstrap 2000 --k 84 --dataset` the file; 84 and 85
items), the three clean draws of these calibrations together (the twenty-seventh to twenty-ninth,
253 items, `--k 84`), every traced draw pooled (2,630 items, `--k 2461`, templates resampled) and
`estimates` on the twenty-nine files. Expected, from the twenty-seven draws read with these
calibrations (twenty-six a re-look, one clean): on each draw alone, whether either rule meets the
target is close to a toss-up leaning to met (each met it on 21 of 27 draws; 80% and 79% of the
twenty-seventh draw's resamples), and whether either reaches the issue's bar is a toss-up; on the
three clean draws together, each rule more likely than not meets the target; pooled over
twenty-nine, the cross-check rule more likely than not reaches the bar (66% of resamples over
twenty-seven) and the default does not (38%); the unshifted mean P(correct) is nearer the share
right than the label-shift estimate on each new reading (59 of 60 so far).

How they went (docs/benchmarks.md, *The twenty-eighth and twenty-ninth draws*): tracing started
earlier than planned, at 00:21:59 UTC, and ended at 01:51:11, inside the deadline; both draws were
read as planned, before grader v3 was merged, and the plan commit's code gave byte-identical output.
On the twenty-eighth draw both rules missed the target, by one and two answers (both logprob
baselines met it), and neither reached the bar; on the twenty-ninth both met the target and reached
the bar; on the three clean draws together both met the target, by one answer each; pooled over
twenty-nine the cross-check rule reached the bar and the default did not (56% and 38% of the gap);
the unshifted mean was nearer on each new reading, 6 of 6.

`symbolic --dataset bench/datasets/gsm-symbolic-30.jsonl --k 84` and `symbolic --dataset
bench/datasets/gsm-symbolic-31.jsonl --k 83` judge a thirtieth and a thirty-first draw (84 items:
the thirty-second instance of each template, `--instances 31 32`, less one; 83 items: the
thirty-third, `--instances 32 33`, less two), the first and second clean draws of the calibrations
refitted after grader v3 (7aba342: math thresholds 0.5047, and 0.4505 with the cross-check), by the
same judgement, fixed in the commit that adds both files, after every earlier draw was read again
with those calibrations and before either is traced. No calibration, feature, check, grader or
threshold changes before they are read. The generator's `t53-31` states the eighteenth draw's
`t53-19` again, so it is left out of the thirtieth file; `t13-32` and `t52-32` state the tenth
draw's `t13-11` and the fifteenth's `t52-16` again, so they are left out of the thirty-first; no
other item repeats an earlier draw's problem (checked by prompt against all twenty-nine files and
each other, and by `tests/unit/test_datasets.py`). Both are traced with `bench run --config
calibrated`, the thirtieth first, and neither is read until both tracings end. Tracing starts at
about 02:55 UTC on 2026-11-28; if it has not ended by 05:00 UTC, the traces so far are committed
unread, both draws stay clean, and a later session completes them with the same `bench run` (which
traces only what is missing) before reading any of them; never given up because of what a trace
shows. The main readings are each draw alone (`symbolic --bootstrap 2000 --k 84` and `--k 83
--dataset` the file), the two together (167 items, `--k 83`), every traced draw pooled (2,797
items, `--k 2630`, templates resampled) and `estimates` on the thirty-one files. Expected, from the
twenty-nine draws read again with these calibrations (a re-look): on each draw alone, whether either
rule meets the target is close to a toss-up leaning to met (the default met it on 22 of 29 draws,
the cross-check rule on 21), and whether either reaches the issue's bar is a toss-up; on the two
together, each rule more likely than not meets the target; pooled over thirty-one, the cross-check
rule more likely than not reaches the bar (65% of resamples over twenty-nine) and the default does
not (34%); the unshifted mean P(correct) is nearer the share right than the label-shift estimate on
each new reading (as on 6 of 6 new readings of the calibrations before these).

How they went (docs/benchmarks.md, *The thirtieth and thirty-first draws*): tracing started at
02:43:47 UTC, right after the plan commit, and ended at 04:04:17, inside the deadline; both draws
were read as planned, with the plan commit's code. The default rule met the target on both draws
(two and one to spare) and reached the bar on the thirtieth; the cross-check rule met it on the
thirtieth (three to spare) and missed the thirty-first by one answer, where both logprob baselines
met it; on the two together both met it (three and two to spare) and neither reached the bar;
pooled over thirty-one the cross-check rule reached the bar and the default did not (57% and 38% of
the gap); the unshifted mean was nearer on each new reading, 6 of 6.

`symbolic --dataset bench/datasets/gsm-symbolic-32.jsonl --k 83` judges a thirty-second draw (83
items: the thirty-fourth instance of each template, `--instances 33 34`, less two), the third
clean draw of the calibrations refitted after grader v3, by the same judgement, fixed in the commit
that adds the file, after the thirtieth and thirty-first draws were read and before it is traced.
No calibration, feature, check, grader or threshold changes before it is read. The generator's
`t33-33` and `t82-33` state the twenty-third draw's `t33-24` and the third's `t82-3` again, so
they are left out; no other item repeats an earlier draw's problem (checked by prompt against all
thirty-one files, and by `tests/unit/test_datasets.py`). It is traced with `bench run --config
calibrated` once the measurements running at the plan's commit end (about 04:35 UTC on
2026-11-28), and not read until its tracing ends; if it has not ended by 05:25 UTC, its traces so
far are committed unread, the draw stays clean, and a later session completes them with the same
`bench run` (which traces only what is missing) before reading any of them; never given up because
of what a trace shows. The main readings are the draw alone (`symbolic --bootstrap 2000 --k 83
--dataset` the file), the three clean draws of these calibrations together (the thirtieth to
thirty-second, 250 items, `--k 83`), every traced draw pooled (2,880 items, `--k 2797`, templates
resampled) and `estimates` on the thirty-two files. Expected, from the thirty-one draws read with
these calibrations (two clean): on the draw alone, whether either rule meets the target is close
to a toss-up leaning to met (the default met it on 24 of 31 draws, the cross-check rule on 22),
and whether either reaches the issue's bar is a toss-up; on the three clean draws together, each
rule more likely than not meets the target; pooled over thirty-two, the cross-check rule more
likely than not reaches the bar (63% of resamples over thirty-one) and the default does not (34%);
the unshifted mean P(correct) is nearer the share right than the label-shift estimate on each new
reading.

How it went (docs/benchmarks.md, *The thirty-second draw*): traced 04:28:33-05:07:21 UTC, inside the
deadline, and read as planned with the plan commit's code. Both rules met the target (the default
with no answer to spare, the cross-check rule with one) and neither reached the bar; on the three
clean draws together both met it by three answers and neither reached the bar (38% and 31% of the
gap); pooled over thirty-two the cross-check rule reached the bar and the default did not (56% and
38%); the unshifted mean was nearer on each new reading, 4 of 4.

`symbolic --dataset bench/datasets/gsm-symbolic-33.jsonl --k 85` and `… gsm-symbolic-34.jsonl --k
85` judge a thirty-third and a thirty-fourth draw (85 items each: the thirty-fifth and thirty-sixth
instance of each template, `--instances 34 35` and `--instances 35 36`), the fourth and fifth clean
draws of the calibrations refitted after grader v3, by the same judgement, fixed in the commit that
adds both files, after the thirty-second draw was read and before either is traced. No calibration,
feature, check, grader or threshold changes before they are read. No item repeats an earlier draw's
problem or the other's (checked by prompt against all thirty-two files, and by
`tests/unit/test_datasets.py`). They are traced one after the other with `bench run --config
calibrated` (the thirty-third first) from a worktree at the plan's commit, starting right after it
(about 05:40 UTC on 2026-11-28), and neither is read until both tracings end; if they have not ended
by 07:50 UTC, the traces so far are committed unread, the draws stay clean, and a later session
completes them with the same `bench run` (which traces only what is missing) before reading any of
them; never given up because of what a trace shows. The main readings are each draw alone
(`symbolic --bootstrap 2000 --k 85 --dataset` the file), the five clean draws of these calibrations
together (the thirtieth to thirty-fourth, 420 items, `--k 83`), every traced draw pooled (3,050
items, `--k 2880`, templates resampled) and `estimates` on the thirty-four files. Expected, from
the thirty-two draws read with these calibrations (three clean): on each draw alone, whether either
rule meets the target is close to a toss-up leaning to met (the default met it on 25 of 32 draws,
the cross-check rule on 23), and whether either reaches the issue's bar is a toss-up leaning to not
(the three clean draws reached it once in six readings); on the five clean draws together, each rule
more likely than not meets the target and neither more likely than not reaches the bar (38% and 31%
of the gap on the three); pooled over thirty-four, the cross-check rule more likely than not reaches
the bar (62% of resamples over thirty-two) and the default does not (35%); the unshifted mean
P(correct) is nearer the share right than the label-shift estimate on each new reading.

How they went (docs/benchmarks.md, *The thirty-third and thirty-fourth draws*): traced 05:34:11-06:25:48
and 06:25:48-07:12:47 UTC, inside the deadline, and read as planned with the plan commit's code (a
worktree at it; fixes from code reviews landed on main meanwhile, each checked to change nothing
these draws' traces read). The default met the target on both (one answer and none to spare) and
reached the bar on neither; the cross-check rule missed the thirty-third by one answer and met the
thirty-fourth with none to spare, exactly at its bar; on the five clean draws together both met it
(five and three to spare) and neither reached the bar (33% and 37% of the gap); pooled over
thirty-four the cross-check rule reached the bar and the default did not (55% and 37%); the
unshifted mean was nearer on each new reading, 6 of 6.

`symbolic --dataset bench/datasets/gsm-symbolic-35.jsonl --k 84` and `… gsm-symbolic-36.jsonl --k
85` judge a thirty-fifth and a thirty-sixth draw (the thirty-seventh and thirty-eighth instance of
each template, `--instances 36 37` and `--instances 37 38`; 84 and 85 items), the sixth and seventh
clean draws of the calibrations refitted after grader v3, by the same judgement, fixed in the commit
that adds both files, after the thirty-fourth draw was read and before either is traced. No
calibration, feature, check, grader or threshold changes before they are read. The generator's
`t53-36` states the third draw's `t53-4` again, so it is left out; no other item repeats an earlier
draw's problem or the other's (checked by prompt against all thirty-four files, and by
`tests/unit/test_datasets.py`). They are traced one after the other with `bench run --config
calibrated` (the thirty-fifth first) from a worktree at the plan's commit, starting right after it
(about 08:00 UTC on 2026-11-28), and neither is read until both tracings end; if they have not ended
by 10:05 UTC, the traces so far are committed unread, the draws stay clean, and a later session
completes them with the same `bench run` (which traces only what is missing) before reading any of
them; never given up because of what a trace shows. The main readings are each draw alone
(`symbolic --bootstrap 2000 --k` its size `--dataset` the file), the seven clean draws of these
calibrations together (the thirtieth to thirty-sixth, 589 items, `--k 83`), every traced draw
pooled (3,219 items, `--k 3050`, templates resampled) and `estimates` on the thirty-six files.
Expected, from the thirty-four draws read with these calibrations (five clean): on each draw alone,
whether either rule meets the target is close to a toss-up leaning to met (the default met it on 27
of 34 draws, the cross-check rule on 24), and whether either reaches the issue's bar is a toss-up
leaning to not (the five clean draws reached it twice in ten readings); on the seven clean draws
together, each rule more likely than not meets the target and neither more likely than not reaches
the bar (33% and 37% of the gap on the five); pooled over thirty-six, the cross-check rule more
likely than not reaches the bar (59% of resamples over thirty-four) and the default does not (32%);
the unshifted mean P(correct) is nearer the share right than the label-shift estimate on each new
reading.

How they went (docs/benchmarks.md, *The thirty-fifth and thirty-sixth draws*): traced 07:50:50-08:37:49
and 08:37:49-09:24:31 UTC, inside the deadline, and read as planned with the plan commit's code (a
worktree at it; the fixes from code reviews committed on main meanwhile read both draws the same,
checked after the reading). The default met the target on both (one answer to spare each) and
reached the bar on the thirty-sixth; the cross-check rule met the thirty-fifth with none to spare,
reaching its bar, and missed the thirty-sixth by two; on the seven clean draws together both met it
(seven and one to spare), the default not reaching the bar (44% of the gap) and the cross-check rule,
against the expectation, reaching it (54%); pooled over thirty-six the cross-check rule reached the
bar and the default did not (54% and 34%); the unshifted mean was nearer on each new reading, 6 of 6.

`symbolic --dataset bench/datasets/gsm-symbolic-37.jsonl --k 85` and `… gsm-symbolic-38.jsonl --k
84` judge a thirty-seventh and a thirty-eighth draw (the thirty-ninth and fortieth instance of each
template, `--instances 38 39` and `--instances 39 40`; 85 and 84 items), the eighth and ninth clean
draws of the calibrations refitted after grader v3, by the same judgement, fixed in the commit that
adds both files, after the thirty-sixth draw was read and before either is traced. No calibration,
feature, check, grader or threshold changes before they are read. The generator's `t53-39` states
the twenty-first draw's `t53-22` again, so it is left out; no other item repeats an earlier draw's
problem or the other's (checked by prompt against all thirty-six files, and by
`tests/unit/test_datasets.py`). They are traced one after the other with `bench run --config
calibrated` (the thirty-seventh first) from a worktree at the plan's commit, starting right after it
(about 10:15 UTC on 2026-11-28); this session ends before they can both be traced, so at about 10:40
UTC the tracing is interrupted and the traces so far are committed unread; the draws stay clean, and
a later session completes them with the same `bench run` from a worktree at this plan's commit
(which traces only what is missing) before reading any of them; never given up because of what a
trace shows. The main readings are each draw alone (`symbolic --bootstrap 2000 --k` its size
`--dataset` the file), the nine clean draws of these calibrations together (the thirtieth to
thirty-eighth, 758 items, `--k 83`), every traced draw pooled (3,388 items, `--k 3219`, templates
resampled) and `estimates` on the thirty-eight files. Expected, from the thirty-six draws read with
these calibrations (seven clean): on each draw alone, whether either rule meets the target is close
to a toss-up leaning to met (the default met it on 29 of 36 draws, the cross-check rule on 25), and
whether either reaches the issue's bar is a toss-up leaning to not (the seven clean draws reached it
four times in fourteen readings); on the nine clean draws together, each rule more likely than not
meets the target, the default more likely than not does not reach the bar (44% of the gap on the
seven), and whether the cross-check rule reaches it is a toss-up (54% on the seven, 26% of
resamples); pooled over thirty-eight, the cross-check rule more likely than not reaches the bar (56%
of resamples over thirty-six) and the default does not (31%); the unshifted mean P(correct) is
nearer the share right than the label-shift estimate on each new reading.

How they went (docs/benchmarks.md, *The thirty-seventh and thirty-eighth draws*): 84 of the
thirty-seventh's items were traced on both tiers before the interruption (committed unread); the
next session completed both with the same command from a worktree at the plan's commit
(10:48:38-11:32:52 UTC on 2026-11-28), committed each unread and read them as planned with the plan
commit's code (the fixes from code reviews committed on main meanwhile read both draws the same,
checked after the reading). Both rules met the target on both (the default by three and none, the
cross-check rule by two and one); the bar was reached in one reading of four (the cross-check rule
on the thirty-seventh, 75% of the gap); on the nine clean draws together both met it (ten and four
to spare), the default did not reach the bar (46%) and the cross-check rule did (58%); pooled over
thirty-eight the cross-check rule reached the bar and the default did not (54% and 34%); the
unshifted mean was nearer on each new reading, 6 of 6.

`symbolic --dataset bench/datasets/gsm-symbolic-39.jsonl --k 84` judges a thirty-ninth draw (the
forty-first instance of each template, `--instances 40 41`; 84 items), the tenth clean draw of the
calibrations refitted after grader v3, by the same judgement, fixed in the commit that adds the
file, after the thirty-eighth draw was read and before it is traced. No calibration, feature, check,
grader or threshold changes before it is read. The generator's `t53-40` states the eighth draw's
`t53-9` again, so it is left out; no other item repeats an earlier draw's problem (checked by prompt
against all thirty-eight files, and by `tests/unit/test_datasets.py`). It is traced with `bench run
--config calibrated` from a worktree at the plan's commit, starting right after it (about 11:45 UTC
on 2026-11-28), and not read until the tracing ends; if it has not ended by 13:20 UTC, the traces
so far are committed unread, the draw stays clean, and a later session completes it with the same
`bench run` (which traces only what is missing) before reading it; never given up because of what a
trace shows. The main readings are the draw alone (`symbolic --bootstrap 2000 --k 84 --dataset`
the file), the ten clean draws of these calibrations together (the thirtieth to thirty-ninth, 842
items, `--k 83`), every traced draw pooled (3,472 items, `--k 3388`, templates resampled) and
`estimates` on the thirty-nine files. Expected, from the thirty-eight draws read with these
calibrations (nine clean): on the draw alone, each rule more likely than not meets the target (the
default met it on 31 of 38 draws, the cross-check rule on 27), and whether either reaches the
issue's bar is a toss-up leaning to not (the nine clean draws reached it five times in eighteen
readings); on the ten clean draws together, each rule more likely than not meets the target, the
default more likely than not does not reach the bar (46% of the gap on the nine, 30% of
resamples), and whether the cross-check rule reaches it is a toss-up (58% of the gap on the nine,
41% of resamples); pooled over thirty-nine, the cross-check rule more likely than not reaches the
bar (58% of resamples over thirty-eight) and the default does not (32%); the unshifted mean
P(correct) is nearer the share right than the label-shift estimate on each new reading.

How it went (docs/benchmarks.md, *The thirty-ninth draw*): traced 11:40:06-12:21:16 UTC, inside the
deadline, committed unread and read as planned with the plan commit's code (the fixes from code
reviews committed on main meanwhile read the draw the same, checked after the reading). Both rules
met the target, by one answer each, and both reached the bar, on a draw where both baselines
missed the target (a bar of 7.5 drafts); on the ten clean draws together both met it (eleven and
five to spare), the default did not reach the bar (47%) and the cross-check rule did (58%); pooled
over thirty-nine the cross-check rule reached the bar and the default did not (53% and 33%); the
unshifted mean was nearer on each new reading, 4 of 4.

`symbolic --dataset bench/datasets/gsm-symbolic-40.jsonl --k 85` judges a fortieth draw (the
forty-second instance of each template, `--instances 41 42`; 85 items), the eleventh clean draw of
the calibrations refitted after grader v3, by the same judgement, fixed in the commit that adds the
file, after the thirty-ninth draw was read and before it is traced. No calibration, feature, check,
grader or threshold changes before it is read. No item repeats an earlier draw's problem (checked
by prompt against all thirty-nine files, and by `tests/unit/test_datasets.py`). It is traced with
`bench run --config calibrated` from a worktree at the plan's commit, starting right after it
(about 13:15 UTC on 2026-11-28), and not read until the tracing ends; if it has not ended by 15:15
UTC, the traces so far are committed unread, the draw stays clean, and a later session completes it
with the same `bench run` (which traces only what is missing) before reading it; never given up
because of what a trace shows. The main readings are the draw alone (`symbolic --bootstrap 2000
--k 85 --dataset` the file), the eleven clean draws of these calibrations together (the thirtieth
to fortieth, 927 items, `--k 83`), every traced draw pooled (3,557 items, `--k 3472`, templates
resampled) and `estimates` on the forty files. Expected, from the thirty-nine draws read with these
calibrations (ten clean): on the draw alone, each rule more likely than not meets the target (the
default met it on 32 of 39 draws, the cross-check rule on 28), and whether either reaches the
issue's bar is a toss-up leaning to not (the ten clean draws reached it seven times in twenty
readings); on the eleven clean draws together, each rule more likely than not meets the target, the
default more likely than not does not reach the bar (47% of the gap on the ten, 40% of resamples),
and whether the cross-check rule reaches it is a toss-up (58% of the gap on the ten, 50% of
resamples); pooled over forty, the cross-check rule more likely than not reaches the bar (59% of
resamples over thirty-nine) and the default does not (33%); the unshifted mean P(correct) is nearer
the share right than the label-shift estimate on each new reading.

How it went (docs/benchmarks.md, *The fortieth draw*): traced 13:07:37-13:49:59 UTC, inside the
deadline, committed unread and read as planned with the plan commit's code (the fixes from code
reviews committed on main meanwhile read every committed trace the same, checked after the
reading). Both rules met the target, by one and two answers, and both reached the bar (10 drafts),
on the draw where the 0.5B was right least often yet (12.9%); on the eleven clean draws together
both met it (thirteen and eight to spare), the default did not reach the bar (48%, two drafts
short) and the cross-check rule did (60%); pooled over forty the cross-check rule reached the bar
and the default did not (53% and 33%); the unshifted mean was nearer on 2 of the 4 new readings
(pooled), the label-shift estimate on the draw alone, for both calibrations.

`symbolic --dataset bench/datasets/gsm-symbolic-41.jsonl --k 85` judges a forty-first draw (the
forty-third instance of each template, `--instances 42 43`; 85 items), the twelfth clean draw of
the calibrations refitted after grader v3, by the same judgement, fixed in the commit that adds the
file, after the fortieth draw was read and before it is traced. No calibration, feature, check,
grader or threshold changes before it is read. No item repeats an earlier draw's problem (checked
by prompt against all forty files, and by `tests/unit/test_datasets.py`). It is traced with `bench
run --config calibrated` from a worktree at the plan's commit, starting right after it (about 14:05
UTC on 2026-11-28), and not read until the tracing ends; if it has not ended by 15:30 UTC, the
traces so far are committed unread, the draw stays clean, and a later session completes it with
the same `bench run` (which traces only what is missing) before reading it; never given up because
of what a trace shows. The main readings are the draw alone (`symbolic --bootstrap 2000 --k 85
--dataset` the file), the twelve clean draws of these calibrations together (the thirtieth to
forty-first, 1,012 items, `--k 83`), every traced draw pooled (3,642 items, `--k 3557`, templates
resampled) and `estimates` on the forty-one files. Expected, from the forty draws read with these
calibrations (eleven clean): on the draw alone, each rule more likely than not meets the target
(the default met it on 33 of 40 draws, the cross-check rule on 29), and whether either reaches the
issue's bar is a toss-up leaning to not (the eleven clean draws reached it nine times in twenty-two
readings); on the twelve clean draws together, each rule more likely than not meets the target, the
default more likely than not does not reach the bar (48% of the gap on the eleven, 41% of
resamples), and the cross-check rule more likely than not reaches it, though near a toss-up (60% of
the gap on the eleven, 59% of resamples); pooled over forty-one, the cross-check rule more likely
than not reaches the bar (62% of resamples over forty) and the default does not (34%); the
unshifted mean P(correct) is nearer the share right than the label-shift estimate on the pooled
readings, and more likely than not on the draw alone (it was not on the fortieth).

How it went (docs/benchmarks.md, *The forty-first draw*): traced 14:00:21-14:45:37 UTC, inside the
deadline, committed unread and read as planned with the plan commit's code (the fixes committed on
main meanwhile read the draw the same, checked after the reading). Both rules met the target, by two
answers each, and both reached the bar (10.5 drafts); on the twelve clean draws together both met
it (fifteen and ten to spare) and both reached the bar: the cross-check rule by 16.5 drafts (64%),
the default by 2.5 (52%, 48% of resamples), which the plan had expected not to; pooled over
forty-one the cross-check rule reached the bar and the default did not (55% and 34%); the
unshifted mean was nearer on each new reading, 4 of 4.

`symbolic --dataset bench/datasets/gsm-symbolic-42.jsonl --k 84` judges a forty-second draw (the
forty-fourth instance of each template, `--instances 43 44`; 84 items), the thirteenth clean draw
of the calibrations refitted after grader v3, by the same judgement, fixed in the commit that adds
the file, after the forty-first draw was read and before it is traced. No calibration, feature,
check, grader or threshold changes before it is read. The generator's `t06-43` states the
thirty-fifth draw's `t06-36` again, so it is left out; no other item repeats an earlier draw's
problem (checked by prompt against all forty-one files, and by `tests/unit/test_datasets.py`). The
plan's first commit (42c753b) left out `t99-43` instead, a slip of the check's printout that the
test caught; its tracing was stopped after 37 s (one item, `t00-43`, traced by both models, not
read, kept: the same prompt is in this file) and started again from the mended commit. It is traced
with `bench run --config calibrated` from a worktree at the plan's commit, starting right after it
(about 15:35 UTC on 2026-11-28), and not read until the tracing ends; if it has not ended
by 17:15 UTC, the traces so far are committed unread, the draw stays clean, and a later session
completes it with the same `bench run` (which traces only what is missing) before reading it; never
given up because of what a trace shows. The main readings are the draw alone (`symbolic --bootstrap
2000 --k 84 --dataset` the file), the thirteen clean draws of these calibrations together (the
thirtieth to forty-second, 1,096 items, `--k 83`), every traced draw pooled (3,726 items, `--k
3642`, templates resampled) and `estimates` on the forty-two files. Expected, from the forty-one
draws read with these calibrations (twelve clean): on the draw alone, each rule more likely than
not meets the target (the default met it on 34 of 41 draws, the cross-check rule on 30), and
whether either reaches the issue's bar is a toss-up (the twelve clean draws reached it eleven times
in twenty-four readings); on the thirteen clean draws together, each rule more likely than not
meets the target, whether the default reaches the bar is a toss-up (52% of the gap on the twelve,
48% of resamples), and the cross-check rule more likely than not reaches it (64% of the gap on the
twelve, 66% of resamples); pooled over forty-two, the cross-check rule more likely than not reaches
the bar (65% of resamples over forty-one) and the default does not (37%); the unshifted mean
P(correct) is nearer the share right than the label-shift estimate on the pooled readings, and more
likely than not on the draw alone.

How it went (docs/benchmarks.md, *The forty-second draw*): traced 15:29:08-16:12:18 UTC, inside the
deadline, committed unread and read as planned with the plan commit's code (the fixes committed on
main meanwhile read the draw the same, checked after the reading; a progress check had printed
three lines of the tracing log, naming two items' verdicts, before anything could change). Both
rules met the target, by one and three answers, and both reached the bar (7 drafts), on a draw where
both baselines missed the target; on the thirteen clean draws together both met it (seventeen and
fourteen to spare) and both reached the bar: the cross-check rule by 16.5 drafts (63%), the default
by 4.5 (54%, 56% of resamples); pooled over forty-two the cross-check rule reached the bar and the
default did not (54% and 35%); the unshifted mean was nearer on each new reading, 4 of 4.

`symbolic --dataset bench/datasets/gsm-symbolic-43.jsonl --k 84` judges a forty-third draw (the
forty-fifth instance of each template, `--instances 44 45`; 84 items), the fourteenth clean draw of
the calibrations refitted after grader v3, by the same judgement, fixed in the commit that adds the
file, after the forty-second draw was read and before it is traced. No calibration, feature, check,
grader or threshold changes before it is read. The generator's `t26-44` states the thirty-first
draw's `t26-32` again, so it is left out; no other item repeats an earlier draw's problem (checked by
prompt against all forty-two files, and by `tests/unit/test_datasets.py`). It is traced with `bench
run --config calibrated` from a worktree at the plan's commit, starting right after it (about 16:30
UTC on 2026-11-28), and not read until the tracing ends; if it has not ended by 18:00 UTC, the
traces so far are committed unread, the draw stays clean, and a later session completes it with the
same `bench run` (which traces only what is missing) before reading it; never given up because of
what a trace shows. The main readings are the draw alone (`symbolic --bootstrap 2000 --k 84
--dataset` the file), the fourteen clean draws of these calibrations together (the thirtieth to
forty-third, 1,180 items, `--k 83`), every traced draw pooled (3,810 items, `--k 3726`, templates
resampled) and `estimates` on the forty-three files. Expected, from the forty-two draws read with
these calibrations (thirteen clean): on the draw alone, each rule more likely than not meets the
target (the default met it on 35 of 42 draws, the cross-check rule on 31), and whether either
reaches the issue's bar is a toss-up (the thirteen clean draws reached it thirteen times in
twenty-six readings); on the fourteen clean draws together, each rule more likely than not meets
the target, whether the default reaches the bar is a toss-up (54% of the gap on the thirteen, 56%
of resamples), and the cross-check rule more likely than not reaches it (63% of the gap on the
thirteen, 74% of resamples); pooled over forty-three, the cross-check rule more likely than not
reaches the bar (68% of resamples over forty-two) and the default does not (39%); the unshifted mean
P(correct) is nearer the share right than the label-shift estimate on the pooled readings, and more
likely than not on the draw alone.

How it went (docs/benchmarks.md, *The forty-third draw*): traced 16:23:36-17:05:56 UTC, inside the
deadline, committed unread and read as planned with the plan commit's code (the fixes committed on
main meanwhile read the draw the same, checked after the reading). Both rules met the target with
none to spare and reached the bar (13 drafts; the default exactly), the closest draw of the
fourteen (60% of item resamples meet the target); on the fourteen clean draws together both met it
(seventeen and fourteen to spare) and both reached the bar: the cross-check rule by 18.5 drafts
(64%), the default by 5.5 (54%, 53% of resamples); pooled over forty-three the cross-check rule
reached the bar and the default did not (55% and 35%); the unshifted mean was nearer on each new
reading, 4 of 4.

    .venv/bin/python scripts/study_prior_shift.py simulate
    .venv/bin/python scripts/study_prior_shift.py fresh
    .venv/bin/python scripts/study_prior_shift.py symbolic
    .venv/bin/python scripts/study_prior_shift.py symbolic --k 510 \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6}.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --k 680 \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6,-7}.jsonl
    .venv/bin/python scripts/study_prior_shift.py estimates \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6,-7}.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --k 765 \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6,-7,-8,-9}.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --k 935 \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6,-7,-8,-9,-10}.jsonl
    .venv/bin/python scripts/study_prior_shift.py estimates \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6,-7,-8,-9,-10}.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --k 935 --bootstrap 2000 \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6,-7,-8,-9,-10}.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --bootstrap 2000 \
        --dataset bench/datasets/gsm-symbolic-11.jsonl bench/datasets/gsm-symbolic-12.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --k 1020 --bootstrap 2000 \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6,-7,-8,-9,-10,-11,-12}.jsonl
    .venv/bin/python scripts/study_prior_shift.py estimates \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6,-7,-8,-9,-10,-11,-12}.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --bootstrap 2000 \
        --dataset bench/datasets/gsm-symbolic-13.jsonl bench/datasets/gsm-symbolic-14.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --k 1190 --bootstrap 2000 \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6,-7,-8,-9,-10,-11,-12,-13,-14}.jsonl
    .venv/bin/python scripts/study_prior_shift.py estimates \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6,-7,-8,-9,-10,-11,-12,-13,-14}.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --bootstrap 2000 \
        --dataset bench/datasets/gsm-symbolic-15.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --k 1360 --bootstrap 2000 \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6,-7,-8,-9,-10,-11,-12,-13,-14,-15}.jsonl
    .venv/bin/python scripts/study_prior_shift.py estimates \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6,-7,-8,-9,-10,-11,-12,-13,-14,-15}.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --bootstrap 2000 \
        --dataset bench/datasets/gsm-symbolic-16.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --k 1445 --bootstrap 2000 \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6,-7,-8,-9,-10,-11,-12,-13,-14,-15,-16}.jsonl
    .venv/bin/python scripts/study_prior_shift.py estimates \
        --dataset bench/datasets/gsm-symbolic{,-2,-3,-4,-5,-6,-7,-8,-9,-10,-11,-12,-13,-14,-15,-16}.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --bootstrap 2000 --k 84 \
        --dataset bench/datasets/gsm-symbolic-28.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --bootstrap 2000 --k 84 \
        --dataset bench/datasets/gsm-symbolic-29.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --bootstrap 2000 --k 84 \
        --dataset bench/datasets/gsm-symbolic-{27,28,29}.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --bootstrap 2000 --k 84 \
        --dataset bench/datasets/gsm-symbolic-30.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --bootstrap 2000 --k 83 \
        --dataset bench/datasets/gsm-symbolic-31.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --bootstrap 2000 --k 83 \
        --dataset bench/datasets/gsm-symbolic-{30,31}.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --bootstrap 2000 --k 83 \
        --dataset bench/datasets/gsm-symbolic-32.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --bootstrap 2000 --k 83 \
        --dataset bench/datasets/gsm-symbolic-{30,31,32}.jsonl
    .venv/bin/python scripts/study_prior_shift.py symbolic --k 2797 --bootstrap 2000 \
        --dataset bench/datasets/gsm-symbolic{,-?,-??}.jsonl  # the 32 files, in order
    .venv/bin/python scripts/study_prior_shift.py estimates \
        --dataset bench/datasets/gsm-symbolic{,-?,-??}.jsonl  # the 32 files, in order
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecascade.benchmarks.policies import (
    DEFAULT_MARGIN_Z,
    always_large,
    cascadeflow_score,
    choose_threshold,
    mean_logprob_score,
    oracle_share_at_target,
    random_routing,
)
from edgecascade.benchmarks.report import (
    _VARIANTS,
    CALIBRATED,
    CALIBRATED_CROSS_CHECK,
    DEFAULT_SEED,
    DraftFeatures,
    max_random_share,
    out_of_fold_scores,
)
from edgecascade.benchmarks.traces import Trace
from edgecascade.cli.bench_traces import _bench_cascade, _traced_datasets
from edgecascade.quality.adapt import adapt_calibration
from edgecascade.quality.calibration import (
    Calibration,
    ThresholdTable,
    auroc,
    auroc_interval,
    fit_calibration,
    resample_groups,
)
from edgecascade.quality.prior_shift import adapt_to_unlabelled
from edgecascade.quality.thresholds import threshold_for_target

TARGET = 0.95
BASELINES = {"cascadeflow-style": cascadeflow_score, "mean logprob": mean_logprob_score}


def gsm8k(config: str, first: int) -> tuple[list[Sequence[Trace]], list[Sequence[Trace]], DraftFeatures]:
    """GSM8K's first ``first`` traced items and the items after them (in the dataset's order)."""
    ns = argparse.Namespace(config=config, datasets=["gsm8k"], fresh_from=[("gsm8k", first)], traces=None,
                            max_tokens=None, seed=DEFAULT_SEED)
    cascade, _, _ = _bench_cascade(config)
    [data], _ = _traced_datasets(ns, cascade)
    position = {k: i for i, k in enumerate(data.prompts)}
    fresh: list[Sequence[Trace]] = sorted(data.held_out, key=lambda p: position[p[0].item_id])
    return list(data.calibration), fresh, DraftFeatures([data], config != "default")


def judged(keep: np.ndarray, small: np.ndarray, large: np.ndarray) -> tuple[float, bool]:
    """The share of drafts kept, and whether the target (95% of the large model's accuracy here) was met."""
    acc = float(np.where(keep, small, large).mean())
    return float(keep.mean()), acc >= TARGET * float(large.mean()) - 1e-12


def fitted_calibrator(rows: list[dict[str, float]], pairs: Sequence[Sequence[Trace]], seed: int) -> Calibration:
    """A calibrator with its quality-target threshold and table, made as `bench report` makes them."""
    labels = [p[0].correct for p in pairs]
    cal = fit_calibration(rows, labels, model="m", features=_VARIANTS[CALIBRATED], seed=seed)
    oof = out_of_fold_scores(rows, labels, None, [None] * len(rows), seed=seed, model="m",
                             features=_VARIANTS[CALIBRATED], source="a cut").pooled
    cal.threshold_table = ThresholdTable([float(x) for x in oof], labels, [p[-1].correct for p in pairs],
                                         cal.intercept, DEFAULT_MARGIN_Z)
    cal.thresholds = cal.threshold_table.thresholds_at(0.0, [f"{TARGET:g}"])
    return cal


def simulate(args: argparse.Namespace) -> None:
    items, _, feats = gsm8k("default", args.first)
    rows = [feats(p[0]) for p in items]
    small = np.array([p[0].correct for p in items])
    large = np.array([p[-1].correct for p in items])
    base = {name: np.array([score(p[0]) for p in items]) for name, score in BASELINES.items()}
    rng = np.random.default_rng(args.seed)
    tally: dict[tuple[float, str], list[tuple[float, bool]]] = {}
    estimates: dict[float, list[float]] = {}
    edge: dict[float, int] = {}
    key = f"{TARGET:g}"
    print(f"GSM8K's first {len(items)} items: the 0.5B right on {small.mean():.1%}, the 1.5B on {large.mean():.1%}; "
          f"{args.cuts} cuts, traffic of {args.size} drafts")
    for _ in range(args.cuts):
        perm = rng.permutation(len(items))
        fit, play = perm[: len(items) // 2], perm[len(items) // 2:]
        cal = fitted_calibrator([rows[i] for i in fit], [items[i] for i in fit], DEFAULT_SEED)
        cut_t = {name: choose_threshold([items[i] for i in fit], s[fit], TARGET, DEFAULT_MARGIN_Z)
                 for name, s in base.items()}
        right, wrong = play[small[play]], play[~small[play]]
        for q in args.rates:
            k = int(round(q * args.size))
            traffic = np.concatenate([rng.choice(right, k, replace=k > len(right)),
                                      rng.choice(wrong, args.size - k, replace=args.size - k > len(wrong))])
            t_rows = [rows[i] for i in traffic]
            adapted, [shift] = adapt_to_unlabelled(cal, t_rows, [None] * len(t_rows))
            if shift.prior is None:  # an estimate at the edge: not adapted, the calibrator stays as fitted
                assert "look all" in shift.note, shift.note
                edge[q] = edge.get(q, 0) + 1
            else:
                estimates.setdefault(q, []).append(shift.prior)
            labelled = rng.choice(len(traffic), args.labels, replace=False)
            with_labels, _ = adapt_calibration(cal, [t_rows[i] for i in labelled],
                                               small[traffic[labelled]].tolist(), [None] * args.labels)
            keeps = {"calibrated, as fitted": cal.predict_many(t_rows) >= cal.thresholds[key],
                     "calibrated, adapted (no labels)": adapted.predict_many(t_rows) >= adapted.thresholds[key],
                     f"calibrated, adapted ({args.labels} labels)":
                         with_labels.predict_many(t_rows) >= with_labels.thresholds[key],
                     **{name: base[name][traffic] >= cut_t[name] for name in BASELINES},
                     "oracle": small[traffic]}
            for name, keep in keeps.items():
                tally.setdefault((q, name), []).append(judged(keep, small[traffic], large[traffic]))
    for q in args.rates:
        est = np.array(estimates.get(q, [math.nan]))
        at_edge = (f"; in {edge[q]} cuts the estimate sat at the edge, and the calibrator was left as fitted "
                   "(`--unlabelled` says 'not adapted')" if edge.get(q) else "")
        print(f"\ntraffic with {q:.1%} of drafts right: estimated {est.mean():.1%} "
              f"(sd {est.std():.1%}, p10-p90 {np.percentile(est, 10):.1%}-{np.percentile(est, 90):.1%}){at_edge}")
        for (rate, name), got in tally.items():
            if rate != q:
                continue
            shares = np.array([s for s, _ in got])
            met = "" if name == "oracle" else f"met the target in {np.mean([m for _, m in got]):4.0%} of cuts, "
            print(f"  {name:32s} {met}kept {shares.mean():5.1%} (p10-p90 {np.percentile(shares, 10):.1%}-"
                  f"{np.percentile(shares, 90):.1%})")


SHIPPED = (("default", "models/qwen2.5-coder-0.5b.calibration.json"),
           ("calibrated", "models/qwen2.5-coder-0.5b.examples.cross-check.calibration.json"))


def fresh(args: argparse.Namespace) -> None:
    for config, path in SHIPPED:
        items, later, feats = gsm8k(config, args.first)
        judge_shipped(args, config, path, items, later, feats,
                      f"GSM8K items {args.first}-{args.first + len(later) - 1}")


def symbolic(args: argparse.Namespace) -> None:
    for config, path in SHIPPED:
        items, _, _ = gsm8k(config, args.first)
        later, feats = whole_datasets(config, args.dataset)
        judge_shipped(args, config, path, items, later, feats,
                      f"the {len(later)} items of {' and '.join(args.dataset)}")


def whole_datasets(config: str, datasets: Sequence[str]) -> tuple[list[Sequence[Trace]], DraftFeatures]:
    """Every item of the datasets traced on both tiers, each in its dataset's order, one dataset after
    another (none of them fitted on)."""
    ns = argparse.Namespace(config=config, datasets=list(datasets), fresh_from=None, traces=None,
                            max_tokens=None, seed=DEFAULT_SEED)
    cascade, _, _ = _bench_cascade(config)
    data, _ = _traced_datasets(ns, cascade)
    pairs: list[Sequence[Trace]] = []
    for d in data:
        position = {k: i for i, k in enumerate(d.prompts)}
        pairs += sorted([*d.calibration, *d.held_out], key=lambda p: position[p[0].item_id])
    return pairs, DraftFeatures(data, config != "default")


def judge_shipped(args: argparse.Namespace, config: str, path: str, items: Sequence[Sequence[Trace]],
                  later: Sequence[Sequence[Trace]], feats: DraftFeatures, what: str) -> None:
    """One shipped calibration (and the config that loads it) on items it was not fitted on; the
    baselines' thresholds are chosen on ``items``, the GSM8K items the calibration was fitted on."""
    cal = Calibration.load(Path(path))
    if config == "calibrated":
        assert cal.runs_cross_check and list(_VARIANTS[CALIBRATED_CROSS_CHECK]) == cal.features
    rows = [feats(p[0]) for p in later]
    domains = [feats.domain(p[0]) for p in later]
    small = np.array([p[0].correct for p in later])
    large = np.array([p[-1].correct for p in later])
    key = f"{TARGET:g}"
    base = {name: (np.array([score(p[0]) for p in later]),
                   choose_threshold(items, np.array([score(p[0]) for p in items]), TARGET, DEFAULT_MARGIN_Z))
            for name, score in BASELINES.items()}

    def rules(adapted: Calibration) -> dict[str, np.ndarray]:
        t_shipped = np.array([cal.for_domain(d).thresholds[key] for d in domains])
        t_adapted = np.array([adapted.for_domain(d).thresholds[key] for d in domains])
        return {"shipped": cal.predict_each(rows, domains) >= t_shipped,
                "adapted (no labels)": adapted.predict_each(rows, domains) >= t_adapted,
                **{name: s >= t for name, (s, t) in base.items()}, "oracle": small}

    random_share = max_random_share(items, TARGET)
    groups = [template(p[0].item_id) for p in later]
    print(f"\n{path} on {what}: the 0.5B right on {small.mean():.1%} (GSM8K's first {args.first}: "
          f"{np.mean([p[0].correct for p in items]):.1%}), the 1.5B on {large.mean():.1%}")
    print("  AUROC for 'the draft is right' (95% bootstrap interval): " + ", ".join(
        f"{name} {auroc(s, small):.3f} ({'–'.join(f'{x:.2f}' for x in auroc_interval(s, small, groups=groups))})"
        for name, s in
        (("calibrated", cal.predict_each(rows, domains)), *((n, s) for n, (s, _) in base.items()))))
    k = args.k if args.k is not None else 100
    plays = [(f"adapted on all {len(later)}, judged on all", np.arange(len(later)), np.arange(len(later)))]
    if k < len(later):
        plays.append((f"adapted on the first {k}, judged on the {len(later) - k} after them",
                      np.arange(k), np.arange(k, len(later))))
    for name, est_idx, judge_idx in plays:
        adapted, shifts = adapt_to_unlabelled(cal, [rows[i] for i in est_idx], [domains[i] for i in est_idx],
                                              min_drafts=min(k, 100))
        sh = next(s for s in shifts if s.calibrator == "calibrated[math]")
        assert sh.prior is not None and sh.prior_se is not None, sh.note
        print(f"  {name}: estimated base rate {sh.prior:.1%} ± {sh.prior_se:.1%} (right: "
              f"{small[est_idx].mean():.1%}); math threshold {cal.domains['math'].thresholds[key]:.4g} → "
              f"{adapted.domains['math'].thresholds[key]:.4g}")
        got = {}
        for rule, keep in rules(adapted).items():
            share, met = judged(keep[judge_idx], small[judge_idx], large[judge_idx])
            got[rule] = (share, met)
            right = int(np.where(keep[judge_idx], small[judge_idx], large[judge_idx]).sum())
            acc = right / len(judge_idx)
            goal = TARGET * float(large[judge_idx].mean())
            need = int(np.ceil(goal * len(judge_idx) - 1e-9))  # right answers the target asks for
            said = "" if rule == "oracle" else (" met" if met else " MISSED")
            print(f"    {rule:22s} kept {share:5.1%} at {acc:5.1%} (target {goal:.1%}){said}; "
                  f"{right} right, {need} needed")
        # random routing at the largest share whose expected accuracy met the target on the fitted items
        # (as `bench report` chooses it), judged in expectation
        judged_pairs = [later[int(i)] for i in judge_idx]
        rand = random_routing(judged_pairs, random_share)
        rand_met = rand.accuracy >= TARGET * always_large(judged_pairs).accuracy - 1e-12
        got["random routing"] = (random_share, rand_met)
        print(f"    {'random routing':22s} kept {random_share:5.1%} at {rand.accuracy:5.1%} (expected)"
              + (" met" if rand_met else " MISSED"))
        best = max([got[n][0] for n in (*BASELINES, "random routing") if got[n][1]], default=0.0)
        bar = best + max(0.0, got["oracle"][0] - best) / 2  # no gap where the best baseline keeps more
        print(f"    the issue's bar: met, keeping >= {bar:.1%} (the best baseline that met, {best:.1%}, "
              "plus half its gap to the oracle): " + ", ".join(
                  f"{r} {'reached' if got[r][1] and got[r][0] >= bar - 1e-12 else 'not reached'}"
                  + (f" (closes {(got[r][0] - best) / (got['oracle'][0] - best):.0%} of the gap)"
                     if got[r][1] and got["oracle"][0] > best else "")
                  for r in ("shipped", "adapted (no labels)")))
        # two readings the bar above does not give: the most drafts any rule could keep at the target
        # (the budget oracle, `bench report`'s second bound), and the baselines at the threshold that
        # would have been best on these very items (hindsight: no rule could choose it; a bound for them)
        budget = oracle_share_at_target(judged_pairs, TARGET)
        sj, lj = small[judge_idx], large[judge_idx]
        hindsight = {n: float(np.mean(s[judge_idx] >= threshold_for_target(s[judge_idx], sj, lj, TARGET, 0.0)))
                     for n, (s, _) in base.items()}
        h_best = max(hindsight.values())
        h_bar = h_best + max(0.0, got["oracle"][0] - h_best) / 2
        print(f"    the budget oracle keeps {budget:.1%}" + "".join(
                  f"; {r} closes {(got[r][0] - best) / (budget - best):.0%} of that gap"
                  for r in ("shipped", "adapted (no labels)") if got[r][1] and budget > best)
              + "; the baselines in hindsight keep " + ", ".join(f"{n} {v:.1%}" for n, v in hindsight.items())
              + f": the bar from them would be {h_bar:.1%}, which " + ", ".join(
                  f"{r} {'reaches' if got[r][1] and got[r][0] >= h_bar - 1e-12 else 'does not reach'}"
                  for r in ("shipped", "adapted (no labels)")))
    if args.bootstrap:
        resampled_verdicts(rules(cal), small, large, random_share, later, args.bootstrap, args.seed, groups)


def template(item_id: str) -> str:
    """The group an item is resampled with: a GSM-Symbolic item's template (``t07`` for ``t07-13``:
    every draw holds an instance of the same 85 templates, and whether the 0.5B is right depends
    much on the template), else the item itself (GSM8K's items are distinct problems)."""
    head, _, instance = item_id.partition("-")
    return head if len(head) == 3 and head[0] == "t" and head[1:].isdigit() and instance.isdigit() else item_id


def resampled_verdicts(keeps: dict[str, np.ndarray], small: np.ndarray, large: np.ndarray, random_share: float,
                       pairs: Sequence[Sequence[Trace]], n: int, seed: int, groups: Sequence[str]) -> None:
    """How firm the verdicts on these items are: the items drawn again with replacement ``n`` times
    (the thresholds stay as chosen, on GSM8K), and how often the shipped rule met the target, reached
    the issue's bar, and kept more drafts than the best baseline that met it. A reading added after
    the ten draws were read: it chooses nothing. Items are drawn by ``groups``, whole templates at a
    time (a review found, after twenty draws, that drawing pooled instances one by one had made these
    shares far too sure: within a template the 0.5B's rightness correlates at 0.43); a single draw
    holds one instance per template and is drawn as before."""
    rng = np.random.default_rng(seed)
    draw = resample_groups(groups)
    met = reached = ahead = 0
    margins = []
    for _ in range(n):
        idx = draw(rng)
        got = {r: judged(k[idx], small[idx], large[idx]) for r, k in keeps.items() if r != "adapted (no labels)"}
        rand = random_routing([pairs[int(i)] for i in idx], random_share)
        rand_met = rand.accuracy >= TARGET * float(large[idx].mean()) - 1e-12
        best = max([got[b][0] for b in BASELINES if got[b][1]] + ([random_share] if rand_met else []), default=0.0)
        bar = best + max(0.0, got["oracle"][0] - best) / 2  # no gap where the best baseline keeps more
        share, ok = got["shipped"]
        met += ok
        reached += ok and share >= bar - 1e-12
        ahead += ok and share > best
        margins.append(share - bar)
    lo, hi = np.percentile(margins, [5, 95])
    unit = "items" if len(set(groups)) == len(groups) else f"{len(set(groups))} templates (all their instances)"
    print(f"    {unit} drawn again {n} times: shipped met the target in {met / n:.0%}, kept more than the best "
          f"baseline that met it in {ahead / n:.0%}, reached the issue's bar in {reached / n:.0%} (its share minus "
          f"the bar: median {np.median(margins):+.1%}, 90% of draws {lo:+.1%} to {hi:+.1%})")


def estimates(args: argparse.Namespace) -> None:
    """Each traffic's share of right drafts, against the two estimates made without its labels: the
    maximum-likelihood one, which assumes label shift (what `calibrate --unlabelled` adapts to), and
    the calibrator's unshifted mean P(correct), right under covariate shift (both are printed by
    `calibrate --unlabelled`)."""
    for config, path in SHIPPED:
        cal = Calibration.load(Path(path))
        table = cal.domains["math"].threshold_table
        assert table is not None
        print(f"\n{path}: the math calibrator learned a base rate of {table.prior:.1%}")
        traffics = [(f"GSM8K items {args.first}-", gsm8k(config, args.first)[1:])]
        pooled, feats = whole_datasets(config, args.dataset)  # loaded once, then cut per dataset
        names = list(dict.fromkeys(p[0].dataset for p in pooled))
        traffics += [(name, ([p for p in pooled if p[0].dataset == name], feats)) for name in names]
        if len(names) > 1:
            traffics.append((f"the {len(names)} pooled", (pooled, feats)))
        for name, (pairs, feats) in traffics:
            rows, domains = [feats(p[0]) for p in pairs], [feats.domain(p[0]) for p in pairs]
            # `calibrate --unlabelled` asks for 100 drafts; draws of 85 are read with what they have
            adapted, shifts = adapt_to_unlabelled(cal, rows, domains, min_drafts=min(len(rows), 100))
            sh = next(s for s in shifts if s.calibrator == "calibrated[math]")
            assert sh.prior is not None and sh.prior_se is not None and sh.mean_p is not None, sh.note
            right = float(np.mean([p[0].correct for p in pairs]))
            print(f"  {name} ({len(pairs)} drafts): right {right:.1%}; label-shift estimate {sh.prior:.1%} "
                  f"± {sh.prior_se:.1%} (off by {sh.prior - right:+.1%}); unshifted mean P {sh.mean_p:.1%} "
                  f"(off by {sh.mean_p - right:+.1%})")
            covariate_threshold(cal, adapted, rows, pairs)


def covariate_threshold(cal: Calibration, adapted: Calibration, rows: Sequence[dict[str, float]],
                        pairs: Sequence[Sequence[Trace]]) -> None:
    """Tried, not shipped: choosing the math threshold again under covariate shift, with no labels.
    If a draft that looks like a calibration draft is right as often (and the 1.5B as often on its
    question), the calibration items stand for the traffic once each is weighted by how much more
    common its score is there: the density ratio, the odds of a logistic regression on the score's
    log-odds z and z^2 (fitted as every calibrator is, :func:`fit_calibration`) telling the traffic's
    scores from the table's. The calibrator's probabilities are left as they are. Printed beside the
    shipped threshold and the label-shift one (`adapted`: what `calibrate --unlabelled` makes)."""
    m = cal.domains["math"]
    table = m.threshold_table
    assert table is not None and m.intercept == table.intercept  # the shipped files: scores on the table's scale
    z_tab = np.log(np.asarray(table.scores)) - np.log1p(-np.asarray(table.scores))
    z_new = m.logits(rows)
    points = [{"z": float(z), "z2": float(z * z)} for z in np.r_[z_tab, z_new]]
    source = fit_calibration(points, [False] * len(z_tab) + [True] * len(z_new), model="density ratio",
                             features=["z", "z2"])
    weights = np.exp(source.logits(points[:len(z_tab)]))
    key = f"{TARGET:g}"
    t = threshold_for_target(np.asarray(table.scores), np.asarray(table.small_right), np.asarray(table.large_right),
                             TARGET, table.margin_z, weights)
    small = np.array([p[0].correct for p in pairs])
    large = np.array([p[-1].correct for p in pairs])
    a = adapted.domains["math"]
    for rule, judge, threshold in (("shipped", m, m.thresholds[key]), ("label-shift (shipped adapter)", a,
                                   a.thresholds[key]), ("covariate-shift threshold", m, t)):
        keep = judge.predict_many(rows) >= threshold
        share, met = judged(keep, small, large)
        print(f"    {rule:29s} {threshold:.4g}: kept {share:5.1%}, {int(np.where(keep, small, large).sum())} right "
              f"(target {TARGET * large.mean() * len(pairs):.1f}): {'met' if met else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", nargs="?", choices=["simulate", "fresh", "symbolic", "estimates"],
                    default="simulate")
    ap.add_argument("--first", type=int, default=1100, help="the calibrations were fitted on GSM8K's first N items")
    ap.add_argument("--cuts", type=int, default=300, help="simulate: random cuts of the first N items")
    ap.add_argument("--size", type=int, default=219, help="simulate: drafts of traffic per cut (the fresh test's size)")
    ap.add_argument("--rates", type=float, nargs="+", default=[0.12, 0.17, 0.255, 0.35],
                    help="simulate: shares of right drafts in the traffic")
    ap.add_argument("--labels", type=int, default=60,
                    help="simulate: labelled drafts of the traffic that `calibrate --adapt` (with labels) adapts to")
    ap.add_argument("--k", type=int, default=None,
                    help="fresh, symbolic: the first K drafts to adapt on (default 100; symbolic 85: one per template)")
    ap.add_argument("--dataset", nargs="+", default=["bench/datasets/gsm-symbolic.jsonl"],
                    help="symbolic, estimates: the datasets judged (several: pooled)")
    ap.add_argument("--bootstrap", type=int, default=0, metavar="N",
                    help="symbolic: also draw the judged items again N times, and say how often each verdict held")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if args.mode == "symbolic" and args.k is None:
        args.k = 85
    {"simulate": simulate, "fresh": fresh, "symbolic": symbolic, "estimates": estimates}[args.mode](args)


if __name__ == "__main__":
    main()
