set terminal pngcairo size 1000,640 noenhanced
set output 'effective_context.png'
set title 'loss by context: mean over the octave (c/2, c], mean over seeds (effective context: the largest c still >= 0.01 bit below c/2)'
set xlabel 'context c (bytes, log2)'
set ylabel 'bits per byte'
set key outside right top
set grid
set logscale x 2
set title font ',10'
$e0 << EOD
1 3.741893
2 3.194366
4 3.475445
8 2.153268
16 1.929092
32 1.979182
64 1.903556
128 1.912557
256 1.829321
512 1.855302
1024 1.967436
2048 2.294748
4096 3.136394
EOD
$e1 << EOD
1 3.813634
2 3.326931
4 3.507778
8 2.323448
16 2.049740
32 2.132307
64 2.007861
128 1.925855
256 1.838564
512 1.802272
1024 1.783951
2048 1.735730
4096 1.615147
EOD
$e2 << EOD
1 3.857583
2 3.333625
4 3.456554
8 2.036406
16 1.867425
32 1.993292
64 1.951638
128 1.984958
256 1.906358
512 1.880751
1024 1.880607
2048 1.827160
4096 1.730153
EOD
$e3 << EOD
1 3.830444
2 3.277001
4 3.456196
8 2.172527
16 1.891969
32 1.986366
64 1.910889
128 1.909916
256 1.828318
512 1.832106
1024 1.922827
2048 2.174251
4096 3.087851
EOD
$e4 << EOD
1 3.906044
2 3.255165
4 3.526487
8 2.366182
16 2.101737
32 2.174542
64 2.064889
128 1.967006
256 1.866867
512 1.820507
1024 1.791988
2048 1.742432
4096 1.623749
EOD
$e5 << EOD
1 3.812872
2 3.270254
4 3.487397
8 2.100661
16 1.921197
32 1.968067
64 1.887979
128 1.889142
256 1.799080
512 1.775739
1024 1.771682
2048 1.721657
4096 1.614152
EOD
plot $e0 using 1:2 with linespoints lw 2 lc rgb '#000000' pt 1 title 'rope', \
     $e1 using 1:2 with linespoints lw 2 lc rgb '#e41a1c' pt 2 title 'alibi', \
     $e2 using 1:2 with linespoints lw 2 lc rgb '#377eb8' pt 3 title 'fox', \
     $e3 using 1:2 with linespoints lw 2 lc rgb '#4daf4a' pt 4 title 'grape-m', \
     $e4 using 1:2 with linespoints lw 2 lc rgb '#984ea3' pt 5 title 'grape-ap', \
     $e5 using 1:2 with linespoints lw 2 lc rgb '#ff7f00' pt 6 title 'grape-m+grape-ap'
