set terminal pngcairo size 1000,640 noenhanced
set output 'loss_curves.png'
set title 'validation BPB during training (mean over seeds)'
set xlabel 'step'
set ylabel 'bits per byte'
set key outside right top
set grid
$c0 << EOD
100 3.479014
200 3.368708
300 3.320025
400 3.261205
500 3.187329
600 3.024046
700 2.825375
800 2.691166
900 2.594231
1000 2.524927
EOD
$c1 << EOD
100 2.621862
200 2.158687
300 1.979867
400 1.887947
500 1.810977
600 1.751021
700 1.688647
800 1.651021
900 1.618281
1000 1.604467
EOD
$c2 << EOD
100 2.610301
200 2.132085
300 1.976892
400 1.884310
500 1.804986
600 1.750364
700 1.683046
800 1.645646
900 1.616823
1000 1.603877
EOD
$c3 << EOD
100 2.625029
200 2.154454
300 1.976778
400 1.892470
500 1.804805
600 1.751885
700 1.689702
800 1.650510
900 1.619330
1000 1.607594
EOD
$c4 << EOD
100 2.677837
200 2.177432
300 2.000180
400 1.913323
500 1.819591
600 1.753900
700 1.701044
800 1.662377
900 1.624922
1000 1.613209
EOD
$c5 << EOD
100 2.631653
200 2.146610
300 1.981606
400 1.890453
500 1.814049
600 1.753943
700 1.691706
800 1.656640
900 1.620357
1000 1.609307
EOD
$c6 << EOD
100 3.034864
200 2.352944
300 2.110083
400 1.989993
500 1.891480
600 1.814319
700 1.740559
800 1.690609
900 1.658369
1000 1.644753
EOD
$c7 << EOD
100 2.912961
200 2.358747
300 2.138696
400 2.013731
500 1.908790
600 1.840495
700 1.767136
800 1.712810
900 1.673253
1000 1.656812
EOD
$c8 << EOD
100 2.471763
200 2.148645
300 2.030161
400 1.942969
500 1.872227
600 1.812423
700 1.755373
800 1.724006
900 1.691671
1000 1.680586
EOD
$c9 << EOD
100 2.869144
200 2.317424
300 2.089430
400 1.974894
500 1.878065
600 1.803325
700 1.736425
800 1.684434
900 1.651110
1000 1.635154
EOD
$c10 << EOD
100 2.829171
200 2.281594
300 2.074392
400 1.956139
500 1.862508
600 1.805843
700 1.730360
800 1.680011
900 1.646679
1000 1.627758
EOD
$c11 << EOD
100 2.845664
200 2.270814
300 2.075932
400 1.958583
500 1.857517
600 1.790999
700 1.723046
800 1.674578
900 1.639039
1000 1.623521
EOD
$c12 << EOD
100 2.692749
200 2.216067
300 2.044499
400 1.940115
500 1.850241
600 1.785777
700 1.719503
800 1.671213
900 1.635556
1000 1.621649
EOD
$c13 << EOD
EOD
$c14 << EOD
EOD
$c15 << EOD
EOD
$c16 << EOD
EOD
$c17 << EOD
EOD
$c18 << EOD
EOD
$c19 << EOD
EOD
plot $c0 using 1:2 with linespoints lw 2 lc rgb '#000000' pt 1 title 'nope', \
     $c1 using 1:2 with linespoints lw 2 lc rgb '#e41a1c' pt 2 title 'rope', \
     $c2 using 1:2 with linespoints lw 2 lc rgb '#377eb8' pt 3 title 'xpos', \
     $c3 using 1:2 with linespoints lw 2 lc rgb '#4daf4a' pt 4 title 'grape-m', \
     $c4 using 1:2 with linespoints lw 2 lc rgb '#984ea3' pt 5 title 'grape-m-ctx', \
     $c5 using 1:2 with linespoints lw 2 lc rgb '#ff7f00' pt 6 title 'grape-m-basis', \
     $c6 using 1:2 with linespoints lw 2 lc rgb '#a65628' pt 7 title 'grape-m-nc', \
     $c7 using 1:2 with linespoints lw 2 lc rgb '#f781bf' pt 8 title 'alibi', \
     $c8 using 1:2 with linespoints lw 2 lc rgb '#999999' pt 9 title 'fox', \
     $c9 using 1:2 with linespoints lw 2 lc rgb '#1b9e77' pt 10 title 'grape-a', \
     $c10 using 1:2 with linespoints lw 2 lc rgb '#d95f02' pt 11 title 'grape-a-k', \
     $c11 using 1:2 with linespoints lw 2 lc rgb '#7570b3' pt 12 title 'grape-a-q', \
     $c12 using 1:2 with linespoints lw 2 lc rgb '#e7298a' pt 13 title 'grape-a-qk'
