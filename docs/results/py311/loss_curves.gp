set terminal pngcairo size 1000,640 noenhanced
set output 'loss_curves.png'
set title 'validation BPB during training (mean over seeds)'
set xlabel 'step'
set ylabel 'bits per byte'
set key outside right top
set grid
$c0 << EOD
100 3.052372
200 2.504206
300 2.260632
400 2.120098
500 2.024558
600 1.946883
700 1.887538
800 1.835238
900 1.796838
1000 1.776062
EOD
$c1 << EOD
100 3.199076
200 2.745909
300 2.473093
400 2.288485
500 2.150002
600 2.046547
700 1.944426
800 1.866237
900 1.818744
1000 1.787112
EOD
$c2 << EOD
100 2.803095
200 2.466273
300 2.280211
400 2.171242
500 2.078519
600 1.996831
700 1.942368
800 1.886723
900 1.856984
1000 1.836330
EOD
$c3 << EOD
100 3.047033
200 2.497870
300 2.259092
400 2.123247
500 2.031152
600 1.949450
700 1.885915
800 1.835346
900 1.798018
1000 1.775116
EOD
$c4 << EOD
100 3.185347
200 2.749200
300 2.504835
400 2.325996
500 2.193020
600 2.068016
700 1.968056
800 1.894693
900 1.841788
1000 1.811149
EOD
$c5 << EOD
100 2.898919
200 2.423197
300 2.219328
400 2.086237
500 1.998869
600 1.921072
700 1.848787
800 1.797915
900 1.760174
1000 1.739489
EOD
plot $c0 using 1:2 with linespoints lw 2 lc rgb '#000000' pt 1 title 'rope', \
     $c1 using 1:2 with linespoints lw 2 lc rgb '#e41a1c' pt 2 title 'alibi', \
     $c2 using 1:2 with linespoints lw 2 lc rgb '#377eb8' pt 3 title 'fox', \
     $c3 using 1:2 with linespoints lw 2 lc rgb '#4daf4a' pt 4 title 'grape-m', \
     $c4 using 1:2 with linespoints lw 2 lc rgb '#984ea3' pt 5 title 'grape-ap', \
     $c5 using 1:2 with linespoints lw 2 lc rgb '#ff7f00' pt 6 title 'grape-m+grape-ap'
