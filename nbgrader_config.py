# nbgrader reads this file when it runs from the repository root.
c = get_config()  # noqa: F821  (nbgrader provides get_config)

c.CourseDirectory.course_id = "backprop-step-by-step"
# The instructor's notebooks (solutions, visible and hidden tests) live in solutions/<assignment>/.
c.CourseDirectory.source_directory = "solutions"
# What a student's stub cell says: the student notebooks are pages of the site, shown unexecuted.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
